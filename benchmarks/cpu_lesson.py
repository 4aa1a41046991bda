"""Measure candidate settings for the `cpu` lesson: does pretraining beat the baseline?

Each run is one setting (a preset plus dotted overrides) at one seed: the supervised
baseline, pretraining, finetuning and the frozen-feature kNN / linear probe, as
`simclr-lab compare` runs them (sharing its cache), with the final-epoch accuracies and the
wall time of each phase. One JSON line a run is appended to --out.

    python benchmarks/cpu_lesson.py --name modern8 --preset cpu --seeds 0 1 2 \\
        --set pretrain.epochs=8 --set data.evaluate_on=validation

Seed s sets the weight initialisation and augmentation seed to s and the label draw to 42 + s.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

from simclr_lab import evaluate, train
from simclr_lab.config import get_preset
from simclr_lab.data import load_splits


def parse_setting(text: str):
    key, _, value = text.partition("=")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def measure(name: str, preset: str, changes: dict, seed: int, cache_dir) -> dict:
    config = get_preset(preset, **changes, seed=seed, **{"data.seed": 42 + seed})
    start = time.perf_counter()
    splits = load_splits(config.data)
    record = {"name": name, "preset": preset, "changes": changes, "seed": seed}
    record["data_seconds"] = time.perf_counter() - start
    baseline = train.train_baseline(config, splits, cache_dir, verbose=0)
    pretrained = train.pretrain(config, splits, cache_dir, verbose=0)
    finetuned = train.finetune(config, splits, pretrained, cache_dir, verbose=0)
    for phase, result in (
        ("baseline", baseline),
        ("pretraining", pretrained),
        ("finetuning", finetuned),
    ):
        accuracy = result.history["val_acc" if phase != "pretraining" else "val_p_acc"]
        record[phase] = {
            "final": float(accuracy[-1]),
            "max": float(max(accuracy)),
            "seconds": result.seconds,
            "from_cache": result.from_cache,
        }
    started = time.perf_counter()
    record["frozen"] = evaluate.frozen_scores(pretrained.model.encoder, splits)
    record["frozen"]["seconds"] = time.perf_counter() - started
    record["wall_seconds"] = time.perf_counter() - start
    record["gain_finetuned"] = record["finetuning"]["final"] - record["baseline"]["final"]
    record["gain_frozen_probe"] = (
        record["frozen"]["linear_probe_acc"] - record["baseline"]["final"]
    )
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache", default="runs/cpu_lesson_cache")
    parser.add_argument("--out", default="benchmarks/cpu_lesson.jsonl")
    args = parser.parse_args(argv)
    changes = dict(parse_setting(text) for text in args.set)
    for seed in args.seeds:
        record = measure(args.name, args.preset, changes, seed, args.cache)
        line = json.dumps(record)
        with Path(args.out).open("a") as file:
            file.write(line + "\n")
        print(
            f"{args.name} seed {seed}: baseline {record['baseline']['final']:.4f} "
            f"finetuned {record['finetuning']['final']:.4f} "
            f"frozen kNN {record['frozen']['knn_acc']:.4f} "
            f"probe {record['frozen']['linear_probe_acc']:.4f} "
            f"wall {record['wall_seconds']:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
