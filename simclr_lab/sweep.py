"""The label sweep: how accuracy grows with labels per class, for several feature sets.

Features are encoded once; for every labels-per-class budget and seed a class-balanced
subset of the (labelled) unlabelled pool trains kNN and the linear probe, scored on test.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from simclr_lab import plots, train
from simclr_lab.cache import atomic_write_text, check_writable_dir
from simclr_lab.data import Splits, balanced_subset, load_splits
from simclr_lab.evaluate import comparison_encoders, feature_scores

DEFAULT_BUDGETS = (1, 5, 10, 50, 100)


def label_sweep(
    feature_sets: dict,
    splits: Splits,
    per_class=DEFAULT_BUDGETS,
    seeds=(0, 1, 2),
    k: int = 200,
    log=None,
) -> list[dict]:
    """Rows of {features, per_class, seed, knn_acc, linear_probe_acc}.

    feature_sets: {name: (pool features (U, D), test features (M, D))}, the pool being the
    images of `splits.unlabelled`, whose labels the sweep needs (`splits.unlabelled_labels`).
    """
    labels = splits.unlabelled_labels
    if labels is None:
        raise ValueError(
            f"source {splits.source!r} has no labels for its unlabelled pool, so no label sweep; "
            f"use fashion_mnist or synthetic."
        )
    counts = np.bincount(labels, minlength=splits.num_classes)
    too_many = [n for n in per_class if n > counts.min()]
    if too_many:
        raise ValueError(
            f"labels per class {too_many} exceed the {counts.min()} images of the smallest "
            f"class; allowed: 1 to {counts.min()}."
        )
    rows = []
    for budget in per_class:
        for seed in seeds:
            chosen = balanced_subset(labels, budget, splits.num_classes, seed)
            for name, (pool, test) in feature_sets.items():
                scores = feature_scores(pool[chosen], labels[chosen], test, splits.test_labels, k)
                rows.append({"features": name, "per_class": budget, "seed": seed, **scores})
                if log:
                    log(
                        f"{name:>16} {budget:>4} a class, seed {seed}: "
                        f"kNN {scores['knn_acc']:.3f}, probe {scores['linear_probe_acc']:.3f}"
                    )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and spread (min, max) over seeds of each (features, per_class)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["features"], row["per_class"]), []).append(row)
    summary = []
    for (name, budget), group in groups.items():
        entry = {"features": name, "per_class": budget, "seeds": len(group)}
        for metric in ("knn_acc", "linear_probe_acc"):
            values = np.array([r[metric] for r in group])
            entry[metric] = float(values.mean())
            entry[f"{metric}_min"], entry[f"{metric}_max"] = (
                float(values.min()),
                float(values.max()),
            )
        summary.append(entry)
    return summary


def sweep_table(summary: list[dict]) -> str:
    """Markdown: one row per feature set and budget, mean [min, max] in percent."""
    lines = [
        "| features | labels a class | kNN accuracy | linear probe accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    for e in summary:
        cells = [
            f"{e[m] * 100:.1f}% [{e[m + '_min'] * 100:.1f}, {e[m + '_max'] * 100:.1f}]"
            for m in ("knn_acc", "linear_probe_acc")
        ]
        lines.append(f"| {e['features']} | {e['per_class']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def baseline_sweep(config, splits: Splits, per_class, seeds, cache_dir=None, log=None) -> dict:
    """{per_class: [max validation accuracy of the supervised baseline, one per seed]}, each
    trained on the same class-balanced subsets of the pool as the frozen-feature sweep."""
    results = {}
    for budget in per_class:
        for seed in seeds:
            chosen = balanced_subset(splits.unlabelled_labels, budget, splits.num_classes, seed)
            subset = dataclasses.replace(
                splits,
                labelled_images=splits.unlabelled[chosen],
                labelled_labels=splits.unlabelled_labels[chosen],
            )
            trial = config.replace(**{"data.labels_per_class": budget, "data.seed": seed})
            run = train.train_baseline(trial, subset, cache_dir, verbose=0)
            results.setdefault(budget, []).append(run.max_val_accuracy)
            if log:
                log(
                    f"supervised baseline {budget:>4} a class, seed {seed}: "
                    f"{run.max_val_accuracy:.3f}"
                )
    return results


def baseline_points(baseline: dict) -> dict | None:
    """The baseline's mean accuracy per budget, as `plots.plot_label_sweep` draws extras."""
    if not baseline:
        return None
    return {"supervised baseline": {n: float(np.mean(v)) for n, v in baseline.items()}}


def sweep_feature_sets(encoder, splits: Splits, width: int, seed: int) -> dict:
    """{name: (pool features (U, D), test features (M, D))} of the SimCLR encoder, a random
    encoder and raw pixels (`evaluate.comparison_encoders`), as `label_sweep` takes them."""
    encoders = comparison_encoders(encoder, width, splits.image_shape[0], seed)
    return {name: (f(splits.unlabelled), f(splits.test_images)) for name, f in encoders.items()}


def baseline_table(baseline: dict) -> str:
    """Markdown: the supervised baseline's mean accuracy per labels-a-class budget."""
    lines = [
        "| supervised baseline | labels a class | max validation accuracy |",
        "| --- | ---: | ---: |",
    ]
    for n, values in baseline.items():
        seeds = f"{len(values)} seed{'s' if len(values) > 1 else ''}"
        lines.append(
            f"| same encoder, from scratch | {n} | {np.mean(values) * 100:.1f}% ({seeds}) |"
        )
    return "\n".join(lines)


def write_sweep(out, record: dict, table: str, log=print) -> None:
    """sweep.json (`record`: rows, summary, baseline, ...), sweep.md (`table`) and sweep.png
    (`plots.plot_label_sweep`) in the folder `out`."""
    atomic_write_text(out / "sweep.json", json.dumps(record, indent=2))
    atomic_write_text(out / "sweep.md", table + "\n")
    figure = plots.plot_label_sweep(record["summary"], baseline_points(record["baseline"]))
    plots.save_figure(figure, out / "sweep.png")
    log(
        f"\nWrote {out / 'sweep.json'}, {out / 'sweep.md'} and {out / 'sweep.png'} "
        f"({record['wall_seconds']:.0f} s)"
    )


def run_sweep(
    config,
    out_dir,
    cache_dir=None,
    per_class=None,
    seeds=(0, 1, 2),
    log=print,
    baseline_seeds: int = 1,
):
    """Pretrain (or load), then sweep SimCLR features vs a random encoder vs raw pixels, and
    train the supervised baseline at each budget (`baseline_seeds` label draws; 0: none).

    Writes sweep.json, sweep.md and sweep.png to `out_dir`; returns {"summary" (rows of
    `summarise`), "baseline" ({per_class: [accuracy per seed]}), "table" (Markdown)}.
    """
    out = check_writable_dir(out_dir, "out")
    start = time.perf_counter()
    splits = load_splits(config.data)
    if splits.unlabelled_labels is None:
        label_sweep({}, splits)  # raises the clear error before any training
    smallest = int(np.bincount(splits.unlabelled_labels).min())
    per_class = tuple(per_class or [n for n in DEFAULT_BUDGETS if n <= smallest])
    label_sweep({}, splits, per_class)  # checks the budgets before any training
    pretrained = train.pretrain(config, splits, cache_dir, verbose=0)
    features = sweep_feature_sets(
        pretrained.model.encoder, splits, config.model.width, config.seed
    )
    rows = label_sweep(features, splits, per_class, seeds, log=log)
    summary = summarise(rows)
    baseline = baseline_sweep(
        config, splits, per_class, list(seeds)[:baseline_seeds], cache_dir, log
    )
    table = sweep_table(summary) + (f"\n\n{baseline_table(baseline)}" if baseline else "")
    log("\n" + table)
    record = {"preset": config.name, "rows": rows, "summary": summary, "baseline": baseline}
    write_sweep(out, {**record, "wall_seconds": time.perf_counter() - start}, table, log)
    return {"summary": summary, "baseline": baseline, "table": table}
