"""The label sweep: how accuracy grows with labels per class.

Features are encoded once; for every labels-per-class budget and label draw a class-balanced
subset of the (labelled) unlabelled pool trains kNN and the linear probe on frozen features,
and, at a few budgets, the supervised baseline and the finetuned encoder end to end, all
scored on the evaluation split (test, or validation with `data.evaluate_on`).

The `cpu` preset's sweep ships with the package (`sweep_results.json`): `run_sweep` returns it
when its settings match and the local cache does not already hold every supervised run of the
sweep (those, or `use_shipped=False`, compute it here).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from simclr_lab.evaluate import comparison_encoders, feature_scores, summarise_over_seeds
from simclr_lab.figures import plots, study_plots
from simclr_lab.runs import devices, shipped, train
from simclr_lab.runs.cache import atomic_write_text, check_writable_dir, settings_key
from simclr_lab.sources.batching import one_pass_steps
from simclr_lab.sources.data import load_splits
from simclr_lab.sources.splits import Splits, balanced_subset

DEFAULT_BUDGETS = (1, 5, 10, 50, 100)
SHIPPED_RESULTS = shipped.SHIPPED_DIR / "sweep_results.json"


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
    return summarise_over_seeds(rows, ("features", "per_class"), ("knn_acc", "linear_probe_acc"))


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


SUPERVISED_BUDGETS = (1, 10, 100)
SUPERVISED_MODELS = ("supervised baseline", "SimCLR, then finetuned")


def label_draws(config, count: int) -> list[int]:
    """The seeds of `count` label draws: the first is the comparison's own (`data.seed`), so
    the sweep's largest budget at that draw is the comparison's labelled set."""
    return [config.data.seed + i for i in range(count)]


def equal_steps(config, splits: Splits) -> int:
    """Optimisation steps an epoch for every budget: one pass over the preset's own labels,
    so a budget of 1 a class trains as many steps as 100 a class (the labels repeating)."""
    batch_size = train.supervised_batch_size(config, splits)
    return one_pass_steps(len(splits.labelled_labels), batch_size)


def supervised_trials(config, splits: Splits, per_class, draws):
    """(budget, seed, config, splits) of each supervised run's pair: the class-balanced draw
    of the pool the frozen-feature sweep uses, the same steps at every budget (`equal_steps`)."""
    steps = equal_steps(config, splits)
    for seed in draws:
        for budget in per_class:
            chosen = balanced_subset(splits.unlabelled_labels, budget, splits.num_classes, seed)
            subset = dataclasses.replace(
                splits,
                labelled_images=splits.unlabelled[chosen],
                labelled_labels=splits.unlabelled_labels[chosen],
            )
            trial = config.replace(
                **{
                    "data.labels_per_class": budget,
                    "data.seed": seed,
                    "supervised.steps_per_epoch": steps,
                }
            )
            yield budget, seed, trial, subset


def supervised_sweep(
    config, splits: Splits, pretrained, per_class, draws, cache_dir=None, log=None
):
    """Rows of {model, per_class, seed, final_acc, best_acc}: the supervised baseline and the
    pretrained encoder finetuned on each of `supervised_trials`."""
    rows = []
    for budget, seed, trial, subset in supervised_trials(config, splits, per_class, draws):
        baseline, finetuned = SUPERVISED_MODELS
        results = {
            baseline: train.train_baseline(trial, subset, cache_dir, verbose=0),
            finetuned: train.finetune(trial, subset, pretrained, cache_dir, verbose=0),
        }
        for name, result in results.items():
            row = {
                "model": name,
                "per_class": budget,
                "seed": seed,
                "final_acc": result.final_val_accuracy,
                "best_acc": result.max_val_accuracy,
            }
            rows.append(row)
            if log:
                log(
                    f"{name:>22} {budget:>4} a class, draw {seed}: "
                    f"{row['final_acc']:.3f} last epoch"
                )
    return rows


def supervised_runs_cached(config, splits: Splits, pretrained, per_class, draws, cache_dir=None):
    """Whether every baseline and finetuning of `supervised_trials` is finished in the local
    cache (nothing is built or trained)."""
    encoder = train.encoder_key(pretrained.model.encoder.get_weights())
    for _, _, trial, subset in supervised_trials(config, splits, per_class, draws):
        for phase, extra in (("baseline", None), ("finetuning", encoder)):
            if not train.supervised_run(phase, trial, subset, extra, cache_dir)[0].finished:
                return False
    return True


def sweep_settings(
    config, splits: Splits, per_class, draws, supervised_per_class, supervised_draws
):
    """What a sweep's numbers depend on, as JSON: every setting but the arithmetic
    (`shipped.match_key`), the data's fingerprint, the budgets and the draws."""
    settings = {
        **shipped.match_key(config.key_dict()),
        "data_fingerprint": splits.fingerprint,
        "per_class": list(per_class),
        "draws": draws,
        "supervised_per_class": list(supervised_per_class) if supervised_draws else [],
        "supervised_draws": supervised_draws,
    }
    return json.loads(json.dumps(settings))


def shipped_record(settings: dict, path=None) -> dict | None:
    """The shipped sweep record (`SHIPPED_RESULTS`) made with `settings` (`sweep_settings`),
    its `source` saying so and its table starting with that line; None if none matches."""
    if path is None:
        try:
            path = shipped.verified_result(SHIPPED_RESULTS.name, SHIPPED_RESULTS.parent)
        except shipped.DamagedShippedRun as error:
            raise shipped.DamagedShippedRun(
                f"{error}, or compute the sweep here with use_shipped=False "
                "(--set use_shipped=false; hours on the cpu preset)"
            ) from error
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("settings") != settings:
        return None
    source = (
        f"shipped results of `simclr-lab sweep`, made on {record['machine']} in "
        f"{record['precision']} on {record['date']}"
    )
    return {**record, "source": source, "table": f"_{source}_\n\n{record['table']}"}


def summarise_supervised(rows: list[dict]) -> list[dict]:
    """Mean and spread (min, max) over the draws of each (model, per_class), last epoch."""
    return summarise_over_seeds(rows, ("model", "per_class"), ("final_acc",))


def supervised_table(summary: list[dict], steps: int, epochs: int) -> str:
    """Markdown: last-epoch test accuracy per model and budget, mean [min, max] in percent."""
    lines = [
        f"| trained end to end ({epochs} epochs of {steps} steps) | labels a class "
        "| final test accuracy |",
        "| --- | ---: | ---: |",
    ]
    for e in sorted(summary, key=lambda e: (e["per_class"], e["model"] != SUPERVISED_MODELS[0])):
        draws = f"{e['seeds']} draw{'s' if e['seeds'] > 1 else ''}"
        lines.append(
            f"| {e['model']} | {e['per_class']} | {e['final_acc'] * 100:.1f}% "
            f"[{e['final_acc_min'] * 100:.1f}, {e['final_acc_max'] * 100:.1f}] ({draws}) |"
        )
    return "\n".join(lines)


def sweep_feature_sets(encoder, splits: Splits, width: int, seed: int) -> dict:
    """{name: (pool features (U, D), test features (M, D))} of the SimCLR encoder, a random
    encoder and raw pixels (`evaluate.comparison_encoders`), as `label_sweep` takes them."""
    encoders = comparison_encoders(encoder, width, splits.image_shape[0], seed)
    return {name: (f(splits.unlabelled), f(splits.test_images)) for name, f in encoders.items()}


def write_sweep(out, record: dict, table: str, log=print) -> None:
    """sweep.json (`record`: rows, summary, supervised, source, ...), sweep.md (`table`) and
    sweep.png (`study_plots.plot_label_sweep`) in the folder `out`."""
    atomic_write_text(out / "sweep.json", json.dumps(record, indent=2))
    atomic_write_text(out / "sweep.md", table + "\n")
    figure = study_plots.plot_label_sweep(record["summary"], record["supervised"])
    plots.save_figure(figure, out / "sweep.png")
    log(
        f"\nWrote {out / 'sweep.json'}, {out / 'sweep.md'} and {out / 'sweep.png'} "
        f"({record['source']})"
    )


def _provenance(config, settings: dict, seconds: float) -> dict:
    """What a computed sweep record says of where, how and when it was made."""
    machine = devices.machine_name()
    return {
        "settings": settings,
        "key": settings_key(settings),
        "machine": machine,
        "precision": config.model.precision,
        "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": seconds,
        "source": f"computed here on {machine} in {config.model.precision} in {seconds:.0f} s",
    }


def run_sweep(
    config,
    out_dir,
    cache_dir=None,
    per_class=None,
    draws: int = 3,
    log=print,
    supervised_per_class=None,
    supervised_draws: int = 3,
):
    """Pretrain (or load), then sweep SimCLR features vs a random encoder vs raw pixels over
    `draws` label draws a budget, and train the supervised baseline and the finetuned encoder
    at `supervised_per_class` budgets (default 1, 10, 100) over `supervised_draws` draws
    (0: none; each is two training runs of the preset's supervised steps).

    Writes sweep.json, sweep.md and sweep.png to `out_dir`; returns the record: "summary"
    (rows of `summarise`), "supervised" (rows of `summarise_supervised`), "supervised_rows"
    (rows of `supervised_sweep`), "table" (Markdown), "source" (where it came from), "rows",
    "settings" (`sweep_settings`), "machine", "precision", "date". With `config.use_shipped`
    the shipped record of the same settings is returned (`shipped_record`) unless the local
    cache holds every supervised run of the sweep.

    Long because: every budget is checked before the first run trains, then the shipped
    record is loaded or the sweep computed, in the order it happens.
    """
    if draws < 1 or not 0 <= supervised_draws:
        raise ValueError(
            f"draws={draws} must be at least 1 and supervised_draws={supervised_draws} at least 0."
        )
    out = check_writable_dir(out_dir, "out")
    start = time.perf_counter()
    splits = load_splits(config.data)
    if splits.unlabelled_labels is None:
        label_sweep({}, splits)  # raises the clear error before any training
    smallest = int(np.bincount(splits.unlabelled_labels).min())
    per_class = tuple(per_class or [n for n in DEFAULT_BUDGETS if n <= smallest])
    supervised_per_class = tuple(
        supervised_per_class or [n for n in SUPERVISED_BUDGETS if n <= smallest]
    )
    label_sweep({}, splits, per_class + supervised_per_class)  # budgets checked before training
    settings = sweep_settings(
        config, splits, per_class, draws, supervised_per_class, supervised_draws
    )
    pretrained = train.pretrain(config, splits, cache_dir, verbose=0)
    supervised_per_class = supervised_per_class if supervised_draws else ()
    supervised_draws = label_draws(config, supervised_draws)
    record = shipped_record(settings) if config.use_shipped else None
    if record and not supervised_runs_cached(
        config, splits, pretrained, supervised_per_class, supervised_draws, cache_dir
    ):
        log(
            f"Loaded the {record['source']}; use_shipped=False (--set use_shipped=false) "
            f"computes them here."
        )
        log("\n" + record["table"])
        write_sweep(out, record, record["table"], log)
        return record
    features = sweep_feature_sets(
        pretrained.model.encoder, splits, config.model.width, config.seed
    )
    rows = label_sweep(features, splits, per_class, label_draws(config, draws), log=log)
    summary = summarise(rows)
    supervised_rows = supervised_sweep(
        config, splits, pretrained, supervised_per_class, supervised_draws, cache_dir, log
    )
    supervised = summarise_supervised(supervised_rows)
    steps, epochs = equal_steps(config, splits), config.supervised.epochs
    table = sweep_table(summary)
    if supervised:
        table += f"\n\n{supervised_table(supervised, steps, epochs)}"
    log("\n" + table)
    record = {
        "preset": config.name,
        "rows": rows,
        "summary": summary,
        "supervised_rows": supervised_rows,
        "supervised": supervised,
        "supervised_steps": {"epochs": epochs, "steps_per_epoch": steps},
        "table": table,
        **_provenance(config, settings, time.perf_counter() - start),
    }
    write_sweep(out, record, table, log)
    return record
