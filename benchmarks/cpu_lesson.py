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
import dataclasses
import json
import time
from pathlib import Path

from simclr_lab import evaluate
from simclr_lab.runs import train
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources.data import load_splits
from simclr_lab.sources.splits import balanced_subset


def parse_setting(text: str):
    key, _, value = text.partition("=")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def measure(
    name: str, preset: str, changes: dict, seed: int, cache_dir, baseline_only=False, budgets=()
) -> dict:
    config = get_preset(preset, **changes, seed=seed, **{"data.seed": 42 + seed})
    start = time.perf_counter()
    splits = load_splits(config.data)
    record = {"name": name, "preset": preset, "changes": changes, "seed": seed}
    record["data_seconds"] = time.perf_counter() - start
    baseline = train.train_baseline(config, splits, cache_dir, verbose=0)
    if baseline_only:
        accuracy = baseline.history[evaluate.accuracy_key(baseline.history)]
        record["baseline"] = {"final": float(accuracy[-1]), "max": float(max(accuracy))}
        record["baseline"]["seconds"] = baseline.seconds
        return record
    pretrained = train.pretrain(config, splits, cache_dir, verbose=0)
    finetuned = train.finetune(config, splits, pretrained, cache_dir, verbose=0)
    for phase, result in (
        ("baseline", baseline),
        ("pretraining", pretrained),
        ("finetuning", finetuned),
    ):
        accuracy = result.history[evaluate.accuracy_key(result.history)]
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
    record["budgets"] = {
        per_class: at_budget(config, splits, pretrained, per_class, cache_dir)
        for per_class in budgets
    }
    return record


def at_budget(config, splits, pretrained, per_class: int, cache_dir) -> dict:
    """Baseline, finetuning and frozen probe with `per_class` labels, the same encoder.

    The encoder never saw a label (its online probe reads it through stop_gradient), so one
    pretraining serves every budget; its finetunes are cached apart, since a full run at this
    budget would pretrain on a slightly different batch stream.
    """
    config = config.replace(**{"data.labels_per_class": per_class})
    chosen = balanced_subset(
        splits.unlabelled_labels, per_class, splits.num_classes, config.data.seed
    )
    splits = dataclasses.replace(
        splits,
        labelled_images=splits.unlabelled[chosen],
        labelled_labels=splits.unlabelled_labels[chosen],
    )
    baseline = train.train_baseline(config, splits, cache_dir, verbose=0)
    finetuned = train.finetune(
        config, splits, pretrained, Path(cache_dir) / "label-budgets", verbose=0
    )
    frozen = evaluate.frozen_scores(pretrained.model.encoder, splits)
    return {
        "baseline": baseline.final_val_accuracy,
        "finetuning": finetuned.final_val_accuracy,
        "frozen_knn": frozen["knn_acc"],
        "frozen_probe": frozen["linear_probe_acc"],
    }


def summary_table(records: list[dict]) -> str:
    """One Markdown row per setting name: mean and (min-max) over its seeds, in percent."""

    def cell(values):
        values = [v * 100 for v in values]
        mean = sum(values) / len(values)
        if len(values) == 1:
            return f"{mean:.1f}"
        return f"{mean:.1f} ({min(values):.1f}-{max(values):.1f})"

    lines = [
        "| setting | seeds | baseline | finetuned | gain | frozen kNN | frozen probe | "
        "pretraining s | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = list(dict.fromkeys(r["name"] for r in records))
    for name in names:
        runs = [r for r in records if r["name"] == name]
        if "finetuning" not in runs[0]:  # a baseline-only record
            lines.append(
                f"| {name} | {len(runs)} | {cell([r['baseline']['final'] for r in runs])} "
                f"| | | | | | {max(r['baseline']['seconds'] for r in runs):.0f} |"
            )
            continue
        lines.append(
            f"| {name} | {len(runs)} "
            f"| {cell([r['baseline']['final'] for r in runs])} "
            f"| {cell([r['finetuning']['final'] for r in runs])} "
            f"| {cell([r['gain_finetuned'] for r in runs])} "
            f"| {cell([r['frozen']['knn_acc'] for r in runs])} "
            f"| {cell([r['frozen']['linear_probe_acc'] for r in runs])} "
            f"| {max(r['pretraining']['seconds'] for r in runs):.0f} "
            f"| {max(r['wall_seconds'] for r in runs):.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="unnamed")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache", default="runs/cpu_lesson_cache")
    parser.add_argument("--out", default="benchmarks/cpu_lesson.jsonl")
    parser.add_argument("--baseline-only", action="store_true", help="skip pretraining")
    parser.add_argument(
        "--budgets", type=int, nargs="*", default=[], help="also these labels a class"
    )
    parser.add_argument("--summary", action="store_true", help="print the table of --out")
    args = parser.parse_args(argv)
    if args.summary:
        lines = Path(args.out).read_text().splitlines()
        print(summary_table([json.loads(line) for line in lines if line.strip()]))
        return
    changes = dict(parse_setting(text) for text in args.set)
    for seed in args.seeds:
        record = measure(
            args.name, args.preset, changes, seed, args.cache, args.baseline_only, args.budgets
        )
        with Path(args.out).open("a") as file:
            file.write(json.dumps(record) + "\n")
        if args.baseline_only:
            print(f"{args.name} seed {seed}: baseline {record['baseline']['final']:.4f}")
            continue
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
