"""The reference's whole comparison: baseline, pretraining, finetuning, then frozen features.

`run_comparison` is what `simclr-lab compare` and the last lesson run: it returns the metrics
and writes `metrics.json`, `comparison.png` and `table.md` to the output folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from simclr_lab import diagnostics, evaluate
from simclr_lab.config import Config
from simclr_lab.figures import plots
from simclr_lab.runs import distribute, train
from simclr_lab.runs.cache import (
    atomic_write_text,
    check_writable_dir,
    default_cache_dir,
    is_writable_dir,
)
from simclr_lab.runs.devices import describe
from simclr_lab.sources.data import load_splits
from simclr_lab.sources.folder import check_outside
from simclr_lab.studies import own_images


def run_comparison(config: Config, out_dir, cache_dir=None, verbose=2, log=print) -> dict:
    """Run (or load from the cache) the three phases and the frozen-feature evaluation.

    A folder without class folders has no labels: pretraining only (`own_images`), and
    table.md says why.
    """
    if config.data.source == "folder":
        check_outside(config.data.folder, out=out_dir, cache_dir=cache_dir)
    out = check_writable_dir(out_dir, "out")
    cache = Path(cache_dir or default_cache_dir())
    if not is_writable_dir(cache):
        log(f"cache_dir={str(cache)!r} is read-only: finished runs are loaded, none trained.")
    start = time.perf_counter()
    log(f"Preset {config.name!r}: {config.description}")  # reference: its download, its time
    log(describe())
    where = distribute.spread(config)  # a backend or device count that cannot: refused now
    splits = load_splits(config.data, cache_dir)
    if not splits.has_labels:
        note = own_images.NO_LABELS.format(folder=splits.origin)
        log(note)
        metrics = own_images.run_pretraining(
            config, out, cache_dir, splits=splits, verbose=verbose, log=log
        )
        atomic_write_text(out / "table.md", note + "\n")
        return metrics
    plan = train.pretraining_plan(config, splits)  # refuses impossible batching before training
    log(splits.summary())
    log(f"Pretraining batches: {plan.describe()}")
    parts = (plan.unlabelled_per_step, plan.labelled_per_step)
    supervised = train.supervised_batch_size(config, splits)
    distribute.check_batches(config, where.devices, parts, supervised)  # not mid-run
    log(f"Devices: {where.describe_steps(parts, supervised)}")

    phases = _train_phases(config, splits, cache_dir, verbose, log)

    log("\n== frozen features: kNN and linear probe ==")
    encoder = phases["pretraining"].model.encoder
    frozen = evaluate.frozen_feature_comparison(encoder, splits, config.model.width, config.seed)
    metrics = {
        "preset": config.name,
        "config": config.to_dict(),
        "device": describe(),
        "devices": where.devices,  # data-parallel over this many (1: none)
        "data": splits.summary(),
        "phases": {name: _phase_metrics(result) for name, result in phases.items()},
        "frozen_features": frozen,
        # the pretrained model's collapse diagnostics (per epoch in its history when trained)
        "diagnostics": diagnostics.model_diagnostics(
            phases["pretraining"].model, splits.test_images
        ),
        "wall_seconds": time.perf_counter() - start,
    }
    table = comparison_table(metrics)
    log("\n" + table)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "table.md", table + "\n")
    figure = plots.plot_training_curves({n: r.history for n, r in phases.items()})
    plots.save_figure(figure, out / "comparison.png")
    log(f"\nWrote {out / 'metrics.json'}, {out / 'table.md'} and {out / 'comparison.png'}")
    return metrics


def _train_phases(config: Config, splits, cache_dir, verbose, log) -> dict:
    """{"baseline", "pretraining", "finetuning"}: each phase's result, loaded or trained in
    that order (finetuning starts from the pretrained encoder), each reported in one line."""
    phases = {}
    for phase, run in (
        ("baseline", lambda: train.train_baseline(config, splits, cache_dir, verbose=verbose)),
        (
            "pretraining",
            lambda: train.pretrain(
                config,
                splits,
                cache_dir,
                callbacks=[diagnostics.DiagnosticsMonitor(splits.test_images)],
                verbose=verbose,
            ),
        ),
        (
            "finetuning",
            lambda: train.finetune(
                config, splits, phases["pretraining"], cache_dir, verbose=verbose
            ),
        ),
    ):
        log(f"\n== {phase} ==")
        phases[phase] = run()
        log(
            f"{train.report(phases[phase], config.data.evaluate_on)} "
            f"({train.provenance(phases[phase])})"
        )

    if all(result.shipped for result in phases.values()):
        log(
            "\nAll three phases came from the runs shipped with simclr-lab: nothing was "
            "trained here. To train them on this machine instead: simclr-lab compare "
            f"--preset {config.name} --set use_shipped=false"
        )
    return phases


def _phase_metrics(result) -> dict:
    """One phase's entry in metrics.json."""
    return {
        "max_val_accuracy": result.max_val_accuracy,
        "final_val_accuracy": result.final_val_accuracy,
        "seconds": result.seconds,
        "from_cache": result.from_cache,
        "source": train.provenance(result),
        "history": result.history,
    }


def comparison_table(metrics: dict) -> str:
    """The result table as Markdown, accuracies in percent."""
    lines = [
        "| run | final test accuracy | best epoch's (the reference's figure) | time |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "baseline": "supervised baseline",
        "pretraining": "contrastive pretraining (online linear probe)",
        "finetuning": "pretraining + finetuning",
    }
    for name, phase in metrics["phases"].items():
        time_text = f"{phase['seconds']:.0f} s"
        if phase["from_cache"]:
            time_text = "shipped" if phase.get("source", "").startswith("shipped") else "cached"
        final = phase.get("final_val_accuracy")
        final_text = "" if final is None else f"{final * 100:.2f}%"
        best = f"{phase['max_val_accuracy'] * 100:.2f}%"
        lines.append(f"| {labels[name]} | {final_text} | {best} | {time_text} |")
    if metrics["frozen_features"]:
        lines += ["", "| frozen features | kNN accuracy | linear probe accuracy |"]
        lines.append("| --- | ---: | ---: |")
    for name, scores in metrics["frozen_features"].items():
        knn, probe = scores["knn_acc"] * 100, scores["linear_probe_acc"] * 100
        lines.append(f"| {name} | {knn:.2f}% | {probe:.2f}% |")
    return "\n".join(lines)
