"""The study of the course's knobs: temperature and augmentation strength, and how long to
pretrain.

Each point changes one knob of a preset (the `cpu` preset by default) and pretrains on the
validation split (`data.evaluate_on="validation"`: nothing is chosen on the test split). It
records one row per point and seed: the last epoch's contrastive accuracy on the training
batches and on held-out images, kNN and linear-probe accuracy of the frozen encoder at 10 and
100 labels a class, wall time, precision and machine.

How long to pretrain is measured apart (`benchmarks/pretraining_curve.py`, on the test split
as lesson 6's comparison): frozen and finetuned accuracy of whole `cpu` runs of several
lengths against the baseline, shipped as `pretraining_curve.jsonl` (`load_curve()`).

Rows live in JSON-lines files: the project's own measurements ship with the package
(`study_results.jsonl`), a learner's own runs are appended to `study.jsonl` in the cache
folder; `load()` reads both, marking each row's `source` as "shipped" or "yours".
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from simclr_lab.diagnostics import model_ranking
from simclr_lab.evaluate import encode, feature_scores, summarise_over_seeds
from simclr_lab.runs import train
from simclr_lab.runs.cache import default_cache_dir
from simclr_lab.runs.devices import describe, machine_name
from simclr_lab.runs.presets import PRESETS, get_preset
from simclr_lab.runs.shipped import SHIPPED_DIR, verified_result
from simclr_lab.sources.batching import plan_batches
from simclr_lab.sources.data import load_splits
from simclr_lab.sources.splits import balanced_subset

SHIPPED_RESULTS = SHIPPED_DIR / "study_results.jsonl"
CURVE_RESULTS = SHIPPED_DIR / "pretraining_curve.jsonl"
OWN_RESULTS_NAME = "study.jsonl"

# The grid: each knob's values, the preset's own among them.
KNOBS = {
    "temperature": (0.05, 0.1, 0.2, 0.5, 1.0),
    "min_area": (0.1, 0.25, 0.5, 1.0),  # 1.0: no crop at all
    "colour": (0.0, 0.5, 1.0, 1.5),  # x the preset's brightness and jitter; 0: no colour change
    "grayscale": (0.0, 0.2),  # chance of a grey view: off, and the preset's
    "batch_size": (128, 256, 525, 1050),  # the number of negatives (SimCLR paper, Figure 9)
}
# What a learner may ask for: (lowest, highest, lowest included).
RANGES = {
    "temperature": (0.0, 10.0, False),
    "min_area": (0.0, 1.0, False),
    "colour": (0.0, 1 / 0.6, True),  # brightness 0.6 x colour must stay within [0, 1]
    "grayscale": (0.0, 1.0, True),
    "batch_size": (32, 4096, True),  # above the preset's 25 labelled images a step
}
LABEL_BUDGETS = (10, 100)
METRICS = ("c_acc", "val_c_acc", "knn_10", "probe_10", "knn_100", "probe_100")
# The pretext task ranked on a fixed held-out sample (diagnostics.ranking), in the batch study.
RANK_METRICS = ("top1", "top5", "mean_rank")


class StudyError(ValueError):
    """A study point or seed that cannot be run: one line naming the value and what is allowed."""


def parse_point(text: str) -> tuple[str, float]:
    """'temperature=0.5' -> ("temperature", 0.5), checked against `RANGES`."""
    knob, sep, raw = str(text).partition("=")
    knob = knob.strip()
    if not sep or knob not in KNOBS:
        raise StudyError(
            f"Unknown study point {text!r}; expected KNOB=VALUE with KNOB one of "
            f"{', '.join(KNOBS)}."
        )
    try:
        value = float(raw)
    except ValueError:
        raise StudyError(f"{knob}={raw!r} is not a number.") from None
    low, high, low_included = RANGES[knob]
    if (
        not math.isfinite(value)
        or value > high
        or value < low
        or (value == low and not low_included)
    ):
        bracket = "[" if low_included else "("
        raise StudyError(f"{knob}={raw} is out of range; allowed: {bracket}{low:g}, {high:g}].")
    if knob == "batch_size" and value != int(value):
        raise StudyError(f"batch_size={raw} must be a whole number of images.")
    return knob, value


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StudyError(f"seed={seed!r} must be an integer >= 0.")
    return int(seed)


def point_changes(config, knob: str, value: float) -> dict:
    """The dotted settings that put `config` at one point of the study."""
    augment = config.pretrain.augment
    if knob == "temperature":
        return {"pretrain.temperature": value}
    if knob == "min_area":
        return {"pretrain.augment.min_area": value}
    if knob == "colour":
        return {
            "pretrain.augment.brightness": round(augment.brightness * value, 6),
            "pretrain.augment.jitter": round(augment.jitter * value, 6),
        }
    if knob == "batch_size":
        return {"pretrain.batch_size": int(value)}
    return {"pretrain.augment.grayscale": value}


def grid() -> list[tuple[str, float]]:
    """Every (knob, value) of the study."""
    return [(knob, value) for knob, values in KNOBS.items() for value in values]


def study_config(knob: str, value: float, seed: int, preset: str = "cpu", epochs=None):
    """The preset at one point and seed, on the validation split (the synthetic set, which
    has none, on its test split); seed s: initialisation and augmentation s, label draw 42 + s.
    """
    base = get_preset(preset)
    changes = {
        # Fashion-MNIST sources hold out a validation split; the synthetic set has none
        "data.evaluate_on": "validation" if base.data.source != "synthetic" else "test",
        "seed": seed,
        "data.seed": 42 + seed,
        **point_changes(base, knob, value),
    }
    if epochs is not None:
        changes["pretrain.epochs"] = epochs
    return base.replace(**changes)


def run_point(
    knob: str, value: float, seed: int, preset="cpu", epochs=None, cache_dir=None, log=print
) -> dict:
    """Pretrain (or load) one point and measure it: one row of the study."""
    knob, value = parse_point(f"{knob}={value}")
    seed = check_seed(seed)
    config = study_config(knob, value, seed, preset, epochs)
    splits = load_splits(config.data)
    start = time.perf_counter()
    result = train.pretrain(config.replace(use_shipped=False), splits, cache_dir, verbose=0)
    seconds = None if result.from_cache else time.perf_counter() - start
    pool = encode(result.model.encoder, splits.unlabelled)  # (U, width)
    held_out = encode(result.model.encoder, splits.test_images)  # (M, width)
    row = {
        "knob": knob,
        "value": value,
        "seed": seed,
        "preset": config.name,
        "epochs": config.pretrain.epochs,
        "changes": point_changes(config, knob, value),
        "c_acc": float(result.history["c_acc"][-1]),
        "val_c_acc": float(result.history["val_c_acc"][-1]),
    }
    smallest = int(np.bincount(splits.unlabelled_labels).min())
    row["label_budgets"] = [min(budget, smallest) for budget in LABEL_BUDGETS]  # tiny sets: all
    for budget, used in zip(LABEL_BUDGETS, row["label_budgets"]):
        chosen = balanced_subset(splits.unlabelled_labels, used, splits.num_classes, 42 + seed)
        scores = feature_scores(
            pool[chosen], splits.unlabelled_labels[chosen], held_out, splits.test_labels
        )
        row[f"knn_{budget}"] = scores["knn_acc"]
        row[f"probe_{budget}"] = scores["linear_probe_acc"]
    row.update(model_ranking(result.model, splits.test_images))  # top1, top5, mean_rank
    row.update(
        seconds=seconds,
        precision=config.model.precision,
        machine=machine_name(),
        software=describe(),
        evaluated_on=config.data.evaluate_on,
    )
    log(
        f"{knob}={value:g} seed {seed}: contrastive {row['c_acc']:.3f} (held-out "
        f"{row['val_c_acc']:.3f}), kNN@10 {row['knn_10']:.3f}, probe@100 {row['probe_100']:.3f}"
    )
    return row


def own_results_path(cache_dir=None) -> Path:
    return Path(cache_dir or default_cache_dir()) / OWN_RESULTS_NAME


def append(row: dict, path) -> None:
    """Add one row to a JSON-lines results file (created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        file.write(json.dumps(row) + "\n")


def read_rows(path) -> list[dict]:
    """The rows of one JSON-lines file; an unreadable line is an error naming file and line."""
    rows = []
    path = Path(path)
    if not path.is_file():
        return rows
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as error:
            raise StudyError(f"{path}, line {number}: not a JSON row ({error}).") from None
    return rows


def load(shipped=SHIPPED_RESULTS, own=None) -> list[dict]:
    """The shipped rows and the learner's own (default: `study.jsonl` in the cache folder),
    each with `source`: "shipped" or "yours"."""
    own = own_results_path() if own is None else own
    if shipped == SHIPPED_RESULTS:  # the package's own: checked against its checksum
        shipped = verified_result(SHIPPED_RESULTS.name)
    return [{**r, "source": "shipped"} for r in read_rows(shipped)] + [
        {**r, "source": "yours"} for r in read_rows(own)
    ]


def preset_value(knob: str, preset: str = "cpu") -> float:
    """The value `knob` has in the preset itself: the point every knob's line passes through."""
    config = get_preset(preset)
    augment = config.pretrain.augment
    return {
        "temperature": config.pretrain.temperature,
        "min_area": augment.min_area,
        "colour": 1.0,
        "grayscale": augment.grayscale,
        "batch_size": config.pretrain.batch_size,
    }[knob]


def pool_preset_point(rows: list[dict]) -> list[dict]:
    """Every knob's row at the preset's own value is the same run (same settings and seed):
    give each knob all of those runs, one per (source, preset, epochs, seed), with every
    measure any of them recorded, so the preset's point is one figure under every knob.
    A row without a preset is the `cpu` preset's, without a source a shipped one."""

    def group(row):
        return row.get("source", "shipped"), row.get("preset", "cpu"), row["epochs"]

    at_preset = [r for r in rows if r["value"] == preset_value(r["knob"], group(r)[1])]
    runs: dict = {}
    for row in at_preset:
        runs.setdefault(group(row), {}).setdefault(row["seed"], {}).update(row)
    pooled = [r for r in rows if not any(r is p for p in at_preset)]
    for key, knob in sorted({(group(r), r["knob"]) for r in at_preset}):
        for run in runs[key].values():
            pooled.append({**run, "knob": knob, "value": preset_value(knob, key[1])})
    return pooled


def summarise(rows: list[dict]) -> list[dict]:
    """Mean, min and max over seeds of every metric, per (source, knob, value, epochs), sorted
    (rows without a source count as shipped); the preset's point pooled (`pool_preset_point`)."""
    keys = ("source", "knob", "value", "epochs")
    rows = pool_preset_point([{"source": "shipped", **r} for r in rows])
    rows = sorted(rows, key=lambda r: [r[k] for k in keys])
    return summarise_over_seeds(rows, keys, METRICS)


def batch_table(rows: list[dict], unlabelled=60_000, labelled=1_000, per_step=25) -> str:
    """Markdown: the batch-size study, one row per batch size: steps an epoch (for the `cpu`
    preset's 60,000 unlabelled and 1,000 labelled images, 25 of them a step), the pretext task
    ranked on the same 512 held-out images at every size (top-1, top-5, mean rank of the
    positive among the 1,023 other views) and the frozen features with 100 labels a class;
    means over seeds."""
    metrics = (*RANK_METRICS, "knn_100", "probe_100")
    rows = [
        r for r in pool_preset_point(rows) if r["knob"] == "batch_size" and set(metrics) <= set(r)
    ]
    summary = summarise_over_seeds(sorted(rows, key=lambda r: r["value"]), ("value",), metrics)
    lines = [
        "| batch size N | steps an epoch | seeds | top-1 | top-5 | mean rank | kNN, 100 labels "
        "| probe, 100 labels |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in summary:
        steps = plan_batches(unlabelled, labelled, int(e["value"]), per_step).steps
        lines.append(
            f"| {e['value']:,.0f} | {steps} | {e['seeds']} | {e['top1']:.1%} | {e['top5']:.1%} "
            f"| {e['mean_rank']:.1f} | {e['knn_100']:.1%} | {e['probe_100']:.1%} |"
        )
    return "\n".join(lines)


def lab_rows(rows: list[dict]) -> list[dict]:
    """The study's temperature and crop points as rows of the settings lab (lesson 4): one
    per (source, temperature, min_area, epochs), the other knob at its preset's value, with
    kNN and linear-probe accuracy at 100 labels a class (mean over seeds), the mean time of
    the seeds timed here (None where every seed came from a cache) and the machine."""
    groups: dict = {}
    for row in rows:
        if row["knob"] not in ("temperature", "min_area"):
            continue
        preset = PRESETS[row["preset"]].pretrain
        settings = {"temperature": preset.temperature, "min_area": preset.augment.min_area}
        settings[row["knob"]] = row["value"]
        key = (row.get("source", "shipped"), settings["temperature"], settings["min_area"])
        groups.setdefault((*key, row["epochs"]), []).append(row)
    lab = []
    for (source, temperature, min_area, epochs), group in sorted(groups.items()):
        # the preset's point is in both knobs' rows, timed where it trained: that row wins
        timed_last = sorted(group, key=lambda r: r.get("seconds") is not None)
        seeds = {r["seed"]: r for r in timed_last}.values()
        timed = [r["seconds"] for r in seeds if r.get("seconds")]
        lab.append(
            {
                "source": source,
                "temperature": temperature,
                "min_area": min_area,
                "epochs": epochs,
                "seeds": len(seeds),
                "knn_acc": float(np.mean([r["knn_100"] for r in seeds])),
                "linear_probe_acc": float(np.mean([r["probe_100"] for r in seeds])),
                "seconds": float(np.mean(timed)) if timed else None,
                "machine": group[0]["machine"],
            }
        )
    return lab


def study_table(summary: list[dict]) -> str:
    """Markdown: one row per point, each metric as mean% [min, max] over seeds."""
    header = "| source | knob | value | seeds | " + " | ".join(METRICS) + " |"
    lines = [header, "| --- | --- | ---: | ---: |" + " ---: |" * len(METRICS)]
    for e in summary:
        cells = [
            f"{e[m] * 100:.1f}% [{e[m + '_min'] * 100:.1f}, {e[m + '_max'] * 100:.1f}]"
            for m in METRICS
        ]
        lines.append(
            f"| {e['source']} | {e['knob']} | {e['value']:g} | {e['seeds']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def load_curve(path=CURVE_RESULTS) -> list[dict]:
    """The shipped pretraining curve: "baseline" rows (per supervised_epochs) and
    "pretrained" rows (per pretraining_epochs: kNN, linear probe, finetuned accuracy)."""
    if path == CURVE_RESULTS:  # the package's own: checked against its checksum
        path = verified_result(CURVE_RESULTS.name)
    rows = read_rows(path)
    if not rows:
        raise StudyError(
            f"{path} holds no pretraining curve; make it with benchmarks/pretraining_curve.py."
        )
    return rows


def curve_table(rows: list[dict]) -> str:
    """Markdown: the baselines, then one row per pretraining length (accuracies in %)."""
    lines = [
        "| model | frozen kNN | frozen linear probe | trained: last epoch | trained: best epoch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if r["model"] == "baseline":
            name, frozen = f"baseline, {r['supervised_epochs']} epochs", ("", "")
        else:
            name = (
                f"pretrained {r['pretraining_epochs']} epochs, finetuned {r['supervised_epochs']}"
            )
            frozen = (f"{r['knn_acc'] * 100:.1f}%", f"{r['linear_probe_acc'] * 100:.1f}%")
        lines.append(
            f"| {name} | {frozen[0]} | {frozen[1]} | {r['final_acc'] * 100:.1f}% "
            f"| {r['max_acc'] * 100:.1f}% |"
        )
    return "\n".join(lines)
