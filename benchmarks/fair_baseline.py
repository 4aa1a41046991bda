"""How long must the supervised runs train? Accuracy against epochs, baseline and finetuning.

The supervised runs use a constant learning rate, so one long run of E epochs gives the
curve of every shorter run too (its first e epochs are the e-epoch run). For each seed this
trains the `cpu` preset's baseline and finetuning for --epochs on the validation split
(nothing is chosen on the test split) and appends one JSON line per seed with both
validation-accuracy curves, their losses and the wall times.

    python benchmarks/fair_baseline.py --epochs 200 --seeds 0 1 2

Seed s sets the initialisation, augmentation and pretraining seed to s and the label draw
to 42 + s, as benchmarks/cpu_lesson.py does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from simclr_lab.runs import train
from simclr_lab.runs.devices import describe
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources.data import load_splits


def measure(seed: int, epochs: int, cache_dir) -> dict:
    config = get_preset(
        "cpu",
        seed=seed,
        **{"data.seed": 42 + seed, "data.evaluate_on": "validation", "supervised.epochs": epochs},
    )
    splits = load_splits(config.data)
    record = {"seed": seed, "epochs": epochs, "precision": config.model.precision}
    record["device"] = describe()
    baseline = train.train_baseline(config, splits, cache_dir, verbose=0)
    pretrained = train.pretrain(config, splits, cache_dir, verbose=0)
    finetuned = train.finetune(config, splits, pretrained, cache_dir, verbose=0)
    for name, result in (("baseline", baseline), ("finetuning", finetuned)):
        record[name] = {key: result.history[key] for key in ("val_acc", "val_loss", "acc", "loss")}
        record[name]["seconds"] = result.seconds
    record["pretraining_seconds"] = pretrained.seconds
    return record


def window_mean(values, epoch: int, width: int = 10) -> float:
    """Mean validation accuracy over the `width` epochs ending at `epoch` (1-based)."""
    return float(np.mean(values[max(0, epoch - width) : epoch]))


def levelled_off(values, width: int = 10, rise: float = 0.005) -> int:
    """The first epoch E from which the `width`-epoch mean never again rises by more than
    `rise` (half a point) above its value at E."""
    means = [window_mean(values, e, width) for e in range(1, len(values) + 1)]
    for epoch in range(width, len(means) + 1):
        if max(means[epoch - 1 :]) - means[epoch - 1] <= rise:
            return epoch
    return len(means)


def summarise(path, checkpoints=(30, 60, 100, 150, 200)) -> str:
    """Markdown: validation accuracy (10-epoch mean) at each checkpoint, per seed and mean."""
    records = [json.loads(line) for line in open(path)]
    lines = [
        "| epochs | "
        + " | ".join(f"seed {r['seed']} baseline / finetuned" for r in records)
        + " | mean baseline | mean finetuned | mean gain |",
        "| ---: |" + " ---: |" * (len(records) + 3),
    ]
    for epoch in [c for c in checkpoints if all(c <= r["epochs"] for r in records)]:
        pairs = [
            [window_mean(r[n]["val_acc"], epoch) * 100 for n in ("baseline", "finetuning")]
            for r in records
        ]
        base, tuned = np.mean(pairs, axis=0)
        cells = " | ".join(f"{b:.1f} / {t:.1f}" for b, t in pairs)
        lines.append(f"| {epoch} | {cells} | {base:.1f} | {tuned:.1f} | {tuned - base:+.1f} |")
    for name in ("baseline", "finetuning"):
        epochs = [levelled_off(r[name]["val_acc"]) for r in records]
        lines.append(f"\n{name} levels off at epoch {', '.join(map(str, epochs))} (by seed).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=str(Path(__file__).with_name("fair_baseline.jsonl")))
    parser.add_argument("--summarise", action="store_true", help="print the table of --out")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.out))
        return
    for seed in args.seeds:
        start = time.perf_counter()
        record = measure(seed, args.epochs, args.cache_dir)
        record["wall_seconds"] = time.perf_counter() - start
        with open(args.out, "a") as file:
            file.write(json.dumps(record) + "\n")
        best = {n: max(record[n]["val_acc"]) for n in ("baseline", "finetuning")}
        print(
            f"seed {seed}: best baseline {best['baseline']:.4f}, "
            f"finetuned {best['finetuning']:.4f}"
        )


if __name__ == "__main__":
    main()
