"""Lesson 7's failure modes: short pretrainings that each change one setting, all measured
the same way.

Every run is a third of the preset's epochs on at most 10,000 of its unlabelled images
(`short_config`), with the four collapse diagnostics, kNN and the time per step logged each
epoch; at the end, the diagnostics of its projections on 512 test images and kNN and linear
probe of its frozen features (`measure`). The `cpu` preset's runs ship with the package as
results (`failure_runs.json`: each run's cache key, history and measures, no weights), so the
lesson reads them in seconds on one core; any other settings are trained (and cached) as
every run is (`runs`).
"""

from __future__ import annotations

import json
from pathlib import Path

from simclr_lab import diagnostics, evaluate
from simclr_lab.runs import train
from simclr_lab.runs.cache import atomic_write_text, settings_key
from simclr_lab.runs.shipped import SHIPPED_DIR, match_key, seal_results, verified_result

SHIPPED_RESULTS = SHIPPED_DIR / "failure_runs.json"
NO_COLOUR = {
    "pretrain.augment.brightness": 0.0,
    "pretrain.augment.jitter": 0.0,
    "pretrain.augment.grayscale": 0.0,
}
# The runs lesson 7 compares, by name: what each changes in the short preset.
RUNS = {
    "positives only": {"pretrain.method": "positives_only"},
    "SimSiam": {"pretrain.method": "simsiam"},
    "SimCLR (preset)": {},
    "SimCLR, no colour": NO_COLOUR,
    "T = 0.02": {"pretrain.temperature": 0.02},
    "T = 2.0": {"pretrain.temperature": 2.0},
    "Barlow Twins": {"pretrain.method": "barlow_twins"},
}


def short_config(config):
    """The lesson's short runs: a third of the epochs (at least 1), at most 10,000 images."""
    return config.replace(
        **{
            "pretrain.epochs": max(1, config.pretrain.epochs // 3),
            "data.num_unlabelled": min(10_000, config.data.num_unlabelled or 10_000),
        }
    )


def run_key(config, splits) -> str:
    """A hash of what `config`'s pretraining on `splits` depends on, but for the arithmetic
    (`shipped.match_key`), as for the shipped runs: what a shipped result must match to stand
    for it, on a CPU with bfloat16 or without."""
    return settings_key(match_key(train.pretraining_run(config, splits).settings))


def watched(config, splits):
    """Pretrain `config` (or load it from the cache) with the diagnostics, kNN and step time
    logged every epoch; a PhaseResult."""
    watchers = [
        diagnostics.DiagnosticsMonitor(splits.test_images),
        evaluate.KNNMonitor(splits),
        diagnostics.StepTimer(),
    ]
    return train.pretrain(config, splits, callbacks=watchers, verbose=0)


def measure(result, splits) -> dict:
    """A finished run as lesson 7 reads it: its history, the diagnostics of its projections
    on 512 test images, kNN and linear probe of its frozen features, and where it came from."""
    found = diagnostics.model_diagnostics(result.model, splits.test_images)
    scores = evaluate.frozen_scores(result.model.encoder, splits)
    came = "cached" if result.from_cache else f"trained here in {result.seconds:.0f} s"
    return {
        "history": {k: [float(v) for v in values] for k, values in result.history.items()},
        **found,
        "knn": scores["knn_acc"],
        "probe": scores["linear_probe_acc"],
        "came": came,
    }


def load_shipped(path=SHIPPED_RESULTS) -> dict:
    """{run key: measured run} of the shipped results (checked against their checksum)."""
    if path == SHIPPED_RESULTS:
        path = verified_result(SHIPPED_RESULTS.name)
    return json.loads(Path(path).read_text())["runs"]


def runs(names, config, splits, shipped=None) -> dict:
    """{name: measured run} for names of `RUNS` (or {name: changes}) on the short `config`:
    the shipped result where its key matches, else trained or loaded from the cache."""
    wanted = {name: RUNS[name] for name in names} if not isinstance(names, dict) else names
    shipped = load_shipped() if shipped is None else shipped
    found = {}
    for name, changes in wanted.items():
        run_config = config.replace(**changes)
        key = run_key(run_config, splits)
        if key in shipped:
            found[name] = {**shipped[key], "came": f"shipped ({shipped[key]['precision']})"}
        else:
            found[name] = measure(watched(run_config, splits), splits)
    return found


def table(measured: dict) -> str:
    """Each run's last epoch (loss, held-out contrastive accuracy, seconds a step), its
    diagnostics, kNN and probe, and where it came from: one fixed-width line a run."""
    lines = [
        f"{'run':20} {'loss':>7} {'contr.acc':>9} {'align':>6} {'unif':>6} {'std':>6} "
        f"{'rank':>5} {'kNN':>6} {'probe':>6} {'s/step':>6}  run"
    ]
    for name, m in measured.items():
        h = m["history"]
        step = f"{h['step_seconds'][-1]:6.2f}" if "step_seconds" in h else "   n/a"
        lines.append(
            f"{name:20} {h['c_loss'][-1]:7.3f} {h['val_c_acc'][-1]:9.1%} {m['alignment']:6.3f} "
            f"{m['uniformity']:6.3f} {m['std']:6.3f} {m['rank']:5.1f} {m['knn']:6.1%} "
            f"{m['probe']:6.1%} {step}  {m['came']}"
        )
    return "\n".join(lines)


def ship(config, splits, path=SHIPPED_RESULTS, log=print) -> Path:
    """Train (or load) every run of `RUNS` on the short `config` and write their results,
    keyed by run, with the machine and software they ran on; then seal the checksums."""
    from simclr_lab.runs.devices import describe, machine_name

    shipped = {}
    for name, changes in RUNS.items():
        run_config = config.replace(**changes)
        shipped[run_key(run_config, splits)] = {
            "name": name,
            "precision": train.precision(run_config),
            **measure(watched(run_config, splits), splits),
        }
        log(f"{name}: {shipped[run_key(run_config, splits)]['came']}")
    about = {"preset": config.name, "machine": machine_name(), "software": describe()}
    atomic_write_text(Path(path), json.dumps({"about": about, "runs": shipped}, indent=1) + "\n")
    if Path(path) == SHIPPED_RESULTS:
        seal_results()
    return Path(path)
