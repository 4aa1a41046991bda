"""A folder of image files against the in-memory Fashion-MNIST composite: pretraining
throughput (first epoch and later ones) at the same size and settings, and the memory and time
of loading a folder of 20,000 images.

    python benchmarks/folder_throughput.py --count 20000 --epochs 3 --out benchmarks/folder.jsonl

The folder is written under /tmp (the composite's first training images, PNG and JPEG, one
subfolder per class) and deleted at the end. Each measurement runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _memory() -> dict:
    """Peak and current resident memory of this process, in MB (from /proc/self/status)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    names = {"VmHWM": "peak_rss_mb", "VmRSS": "rss_mb", "RssAnon": "rss_anon_mb"}
    return {names.get(key, "rss_file_mb"): value for key, value in fields.items()}


def measure_load(folder: str, size: int, cache: str) -> dict:
    """Load the folder's splits once, and hash them as a cache key does, with the time and
    memory each took: a first run decodes every file, a later one reads the cache."""
    import gc

    import simclr_lab  # noqa: F401
    from simclr_lab.runs.presets import get_preset
    from simclr_lab.sources.data import load_splits
    from simclr_lab.sources.folder import folder_settings

    config = get_preset("cpu", **folder_settings(folder), **{"data.image_size": size})
    decoded_before = any(Path(cache).glob("folders/*/index.json"))
    start = time.perf_counter()
    splits = load_splits(config.data, cache)
    seconds = time.perf_counter() - start
    gc.collect()
    start = time.perf_counter()
    fingerprint = splits.fingerprint
    hashing = time.perf_counter() - start
    return {
        "what": "load",
        "decoded": not decoded_before,
        "image_size": size,
        "images": len(splits.unlabelled),
        "load_s": seconds,
        "fingerprint_s": hashing,
        "fingerprint": fingerprint[:8],
        "cache_mb": splits.unlabelled.nbytes / 1e6,
        "in_memory_mb": (splits.labelled_images.nbytes + splits.test_images.nbytes) / 1e6,
        **_memory(),
    }


def measure_stream(source: str, folder: str, count: int, epochs: int, cache: str) -> dict:
    """Milliseconds to assemble one pretraining batch (the input side of a step alone), epoch
    by epoch, from the in-memory arrays or the memory-mapped folder cache."""
    import simclr_lab  # noqa: F401
    from simclr_lab.runs import train
    from simclr_lab.runs.presets import get_preset
    from simclr_lab.sources.batching import PairedStream
    from simclr_lab.sources.data import load_splits
    from simclr_lab.sources.folder import folder_settings

    changes = {"pretrain.epochs": epochs}
    if source == "folder":
        changes.update(folder_settings(folder))
    else:
        changes.update({"data.num_unlabelled": count, "data.num_test": count // 5})
    config = get_preset("cpu", **changes)
    splits = load_splits(config.data, cache)
    plan = train.pretraining_plan(config, splits)
    stream = PairedStream(
        splits.unlabelled, splits.labelled_images, splits.labelled_labels, plan, epochs
    )
    per_batch = []
    for epoch in range(epochs):
        start = time.perf_counter()
        for step in range(plan.steps):
            stream[epoch * plan.steps + step]
        per_batch.append((time.perf_counter() - start) / plan.steps * 1000)
    return {"what": "stream", "source": source, "batch_ms": per_batch, **_memory()}


def measure_training(source: str, folder: str, count: int, epochs: int, cache: str) -> dict:
    """Images/s of pretraining steps, epoch by epoch, on the cpu preset's recipe."""
    import keras

    import simclr_lab  # noqa: F401
    from simclr_lab.runs import train
    from simclr_lab.runs.presets import get_preset
    from simclr_lab.sources.data import load_splits
    from simclr_lab.sources.folder import folder_settings

    changes = {"pretrain.epochs": epochs}
    if source == "folder":
        changes.update(folder_settings(folder))
    else:  # the same images in memory: the composite's first `count`, 20% as test
        changes.update({"data.num_unlabelled": count, "data.num_test": count // 5})
    config = get_preset("cpu", **changes)
    start = time.perf_counter()
    splits = load_splits(config.data, cache)
    load_s = time.perf_counter() - start

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.began = [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last - self.began)  # training steps, not validation

    clock = StepClock()
    train.pretrain(config, splits, cache, callbacks=[clock], verbose=0)
    plan = train.pretraining_plan(config, splits)
    per_epoch = plan.steps * (plan.unlabelled_per_step + plan.labelled_per_step)
    return {
        "what": "training",
        "source": source,
        "images": len(splits.unlabelled),
        "load_s": load_s,
        "steps_per_epoch": plan.steps,
        "epoch_s": clock.seconds,
        "images_per_s": [per_epoch / s for s in clock.seconds],
        "precision": config.model.precision,
        **_memory(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="images in the folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    parser.add_argument("--out", default=None, help="append one JSON line per measurement")
    kinds = ("load", "stream", "training")
    parser.add_argument("--measure", nargs="+", choices=kinds, default=kinds, help="which")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement, in this fresh process
        kind, *rest = args.child
        if kind == "load":
            result = measure_load(rest[0], int(rest[1]), rest[2])
        elif kind == "stream":
            result = measure_stream(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        else:
            result = measure_training(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        print(json.dumps(result))
        return

    import simclr_lab  # noqa: F401
    from simclr_lab.runs.devices import describe
    from simclr_lab.sources.data import write_demo_folder

    work = Path(tempfile.mkdtemp(prefix="folder-bench-"))
    try:
        start = time.perf_counter()
        folder = write_demo_folder(work / "images", per_class=args.count // 10)
        print(f"wrote {args.count:,} files in {time.perf_counter() - start:.0f} s", flush=True)
        runs = [["load", str(folder), str(s), str(work / f"cache-{s}")] for s in args.sizes]
        runs += runs  # the second time from the cache
        for source in ("memory", "folder"):
            sizes = [str(args.count), str(args.epochs)]
            runs.append(["stream", source, str(folder), *sizes, str(work / source)])
            runs.append(["training", source, str(folder), *sizes, str(work / source)])
        for child in (run for run in runs if run[0] in args.measure):
            command = [sys.executable, __file__, "--child", *child]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(done.stderr[-3000:])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result.update(device=describe(), cpu=_cpu_name(), when=time.strftime("%Y-%m-%d"))
            print(json.dumps(result), flush=True)
            if args.out:
                with open(args.out, "a") as file:
                    file.write(json.dumps(result) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
