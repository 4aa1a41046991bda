"""Figures of what studies measured: the label sweep, what pretraining gains, the knobs'
study and the pretraining curve."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def plot_label_sweep(summary: list[dict], supervised: list[dict] | None = None):
    """Test accuracy vs labels per class (log x), mean with a min-max band over label draws.

    Left: kNN on frozen features; right: the linear probe on frozen features beside the
    models trained end to end. summary: rows of `simclr_lab.studies.sweep.summarise`; supervised:
    rows of `simclr_lab.studies.sweep.summarise_supervised` (last-epoch accuracy), drawn on the
    right only, with error bars from the lowest to the highest draw.
    """
    if not summary:
        raise ValueError("summary is empty: run the sweep first.")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    names = list(dict.fromkeys(e["features"] for e in summary))
    panels = (("knn_acc", "kNN on frozen features"), ("linear_probe_acc", "linear probe"))
    for ax, (metric, title) in zip(axes, panels):
        for name in names:
            rows = sorted(
                (e for e in summary if e["features"] == name), key=lambda e: e["per_class"]
            )
            x = [e["per_class"] for e in rows]
            ax.plot(x, [e[metric] * 100 for e in rows], marker="o", label=f"{name}, frozen")
            ax.fill_between(
                x,
                [e[metric + "_min"] * 100 for e in rows],
                [e[metric + "_max"] * 100 for e in rows],
                alpha=0.2,
            )
        ax.set_xscale("log")
        ax.set_xlabel("labels per class")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    models = list(dict.fromkeys(e["model"] for e in supervised or ()))
    for name, style in zip(models, ("k--", "C3-")):
        rows = sorted((e for e in supervised if e["model"] == name), key=lambda e: e["per_class"])
        mean = np.array([e["final_acc"] for e in rows]) * 100
        low_high = np.array([(e["final_acc_min"], e["final_acc_max"]) for e in rows]).T * 100
        axes[1].errorbar(
            [e["per_class"] for e in rows],
            mean,
            yerr=np.abs(low_high - mean),
            fmt=style,
            marker="s",
            capsize=3,
            label=f"{name} (trained end to end)",
        )
    if models:
        axes[1].set_title("linear probe vs models trained end to end")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pretraining_gains(settings: list[dict]):
    """Supervised baseline vs pretrained model, one group of bars per setting.

    settings: [{"setting": label, "baseline": accuracy, "pretrained": accuracy, and optional
    "baseline_spread" / "pretrained_spread": (low, high)}], accuracies in [0, 1]; each group
    is annotated with the gain in points, so a learner sees where pretraining pays.
    """
    if not settings:
        raise ValueError("settings is empty: pass at least one measured setting.")
    fig, ax = plt.subplots(figsize=(max(6, 2.4 * len(settings)), 4.6))
    x = np.arange(len(settings))
    for offset, key, label in (
        (-0.2, "baseline", "supervised baseline"),
        (0.2, "pretrained", "SimCLR, then finetuned"),
    ):
        values = np.array([s[key] for s in settings]) * 100
        low_high = np.array([s.get(f"{key}_spread") or (s[key], s[key]) for s in settings])
        errors = np.abs(low_high.T * 100 - values)  # (2, settings): below, above
        ax.bar(x + offset, values, width=0.4, label=label, yerr=errors, capsize=3)
    for i, s in enumerate(settings):
        gain = (s["pretrained"] - s["baseline"]) * 100
        top = max(s["pretrained"], s["baseline"]) * 100
        ax.annotate(
            f"{gain:+.1f}",
            (i, top + 2),
            ha="center",
            fontweight="bold",
            color="tab:green" if gain >= 2 else "tab:gray",
        )
    ax.set_xticks(x, [s["setting"] for s in settings], fontsize=8)
    ax.set_ylabel("accuracy on held-out images (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Where pretraining pays: gain of the pretrained model in points")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


STUDY_PRESET_VALUES = {
    "temperature": 0.2,
    "min_area": 0.25,
    "colour": 1.0,
    "grayscale": 0.2,
    "batch_size": 525,
}


STUDY_X_LABELS = {
    "temperature": "temperature (log scale)",
    "min_area": "min_area: smallest crop kept (1 = no crop)",
    "colour": "colour strength (x the preset's brightness and jitter)",
    "grayscale": "chance of a grey view",
    "batch_size": "batch size N (log scale; 2N - 2 negatives per view)",
}


def _study_panel(ax, summary: list[dict], knob: str, metrics, title: str) -> None:
    """One panel of `plot_study`: `metrics` ((key, label) pairs) against `knob`'s value."""
    for index, (metric, label) in enumerate(metrics):
        colour = f"C{index}"
        for source, style in (("shipped", "-o"), ("yours", "D")):
            rows = sorted(
                (e for e in summary if e["knob"] == knob and e["source"] == source),
                key=lambda e: e["value"],
            )
            if not rows:
                continue
            x = np.array([e["value"] for e in rows])
            mean = np.array([e[metric] for e in rows]) * 100
            spread = np.array([(e[metric + "_min"], e[metric + "_max"]) for e in rows]).T
            ax.errorbar(
                x,
                mean,
                yerr=np.abs(spread * 100 - mean),
                fmt=style,
                color=colour,
                mfc="none" if source == "yours" else colour,
                capsize=3,
                label=label if source == "shipped" else f"{label} (yours)",
            )
    ax.axvline(STUDY_PRESET_VALUES[knob], color="gray", linestyle=":", label="cpu preset")
    if knob in ("temperature", "batch_size"):
        ax.set_xscale("log")
        ax.minorticks_off()
    values = sorted({e["value"] for e in summary if e["knob"] == knob})
    ax.set_xticks(values, [f"{v:g}" for v in values])  # the values studied
    ax.set_xlabel(STUDY_X_LABELS[knob])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{knob}: {title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_study(summary: list[dict], knobs=("temperature",)):
    """One row per knob: contrastive accuracy (left) and frozen-feature accuracy (right)
    against the knob's value, mean with min-max bars over seeds; the `cpu` preset's value
    dotted. summary: rows of `simclr_lab.studies.study.summarise`; rows whose source is "yours"
    (a learner's own runs) are drawn as hollow markers beside the shipped ones."""
    if not summary:
        raise ValueError("summary is empty: no study rows to draw.")
    missing = [k for k in knobs if not any(e["knob"] == k for e in summary)]
    if missing:
        raise ValueError(
            f"no study rows for {missing}; the rows hold {sorted({e['knob'] for e in summary})}."
        )
    fig, axes = plt.subplots(len(knobs), 2, figsize=(11, 3.6 * len(knobs)), squeeze=False)
    panels = (
        (("c_acc", "training batches"), ("val_c_acc", "held-out images")),
        (
            ("knn_10", "kNN, 10 labels/class"),
            ("probe_10", "probe, 10 labels/class"),
            ("knn_100", "kNN, 100 labels/class"),
            ("probe_100", "probe, 100 labels/class"),
        ),
    )
    titles = ("contrastive accuracy (the pretext task)", "frozen features (what a learner keeps)")
    for row, knob in enumerate(knobs):
        for column, (metrics, title) in enumerate(zip(panels, titles)):
            _study_panel(axes[row][column], summary, knob, metrics, title)
    fig.tight_layout()
    return fig


def plot_pretraining_curve(rows: list[dict]):
    """Accuracy against pretraining epochs (log scale): the frozen encoder's linear probe and
    kNN, and the finetuned model (last epoch), with the baselines as horizontal lines.
    rows: `simclr_lab.studies.study.load_curve()` ("pretrained" and "baseline" rows)."""
    points = sorted(
        (r for r in rows if r["model"] == "pretrained"), key=lambda r: r["pretraining_epochs"]
    )
    if not points:
        raise ValueError("no 'pretrained' rows: nothing to draw against pretraining epochs.")
    x = [r["pretraining_epochs"] for r in points]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for key, label, style in (
        ("final_acc", "finetuned (60 supervised epochs, last epoch)", "-o"),
        ("linear_probe_acc", "frozen: linear probe", "-s"),
        ("knn_acc", "frozen: kNN", "-^"),
    ):
        ax.plot(x, [r[key] * 100 for r in points], style, label=label)
        for epochs, row in zip(x, points):
            ax.annotate(
                f"{row[key] * 100:.1f}",
                (epochs, row[key] * 100),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
    baselines = sorted(
        (r for r in rows if r["model"] == "baseline"), key=lambda r: r["supervised_epochs"]
    )
    for index, row in enumerate(baselines):
        ax.axhline(
            row["final_acc"] * 100,
            color="gray",
            linestyle=(":", "--")[index % 2],
            label=f"baseline, {row['supervised_epochs']} epochs: {row['final_acc'] * 100:.1f}%",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(e) for e in x])
    ax.set_xlabel("pretraining epochs (each a whole run with its own schedule)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("What more pretraining buys", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
