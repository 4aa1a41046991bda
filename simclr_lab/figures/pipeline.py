"""SimCLR's pipeline as a picture (the SimCLR paper's Figure 2), with one preset's shapes."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

CONTRAST = "#c0392b"  # the pretext task: views, projections, loss
PROBE = "#2471a3"  # the labels' side: the linear probe


def pipeline_shapes(batch: int, labelled: int, image_size: int, width: int, classes: int):
    """The tensors of one pretraining step, by name: N images, 2N views, (2N, width) ..."""
    return {
        "images": f"{batch:,} images\n({batch - labelled:,} unlabelled + {labelled} labelled)\n"
        f"{image_size}x{image_size}x3",
        "views": f"{2 * batch:,} views\n2 per image",
        "features": f"features\n({2 * batch:,}, {width})",
        "projections": f"projections\n({2 * batch:,}, {width})",
        "loss": f"NT-Xent\n{2 * batch:,} x {2 * batch:,} similarities\n/ temperature",
        "probe": f"linear probe\n({labelled}, {width}) -> ({labelled}, {classes})",
    }


def _box(ax, x, y, text, colour="#333333", width=1.6, height=0.9):
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.05",
            facecolor="white",
            edgecolor=colour,
            linewidth=1.6,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, color=colour)


def _arrow(ax, start, end, label="", colour="#333333", dashed=False):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=12,
            color=colour,
            linewidth=1.4,
            linestyle="--" if dashed else "-",
        )
    )
    if label:
        x, y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(x, y + 0.6, label, ha="center", va="bottom", fontsize=7.5, color=colour)


def plot_pipeline(batch=525, labelled=25, image_size=32, width=128, classes=10):
    """One pretraining step from images to loss, and the probe reading the features through a
    stop-gradient; the defaults are the `cpu` preset's shapes. Returns the Figure."""
    shapes = pipeline_shapes(batch, labelled, image_size, width, classes)
    fig, ax = plt.subplots(figsize=(13, 4.6))
    xs = [1.1, 3.6, 6.1, 8.6, 11.1]
    top, bottom = 2.3, 0.55
    _box(ax, xs[0], top, shapes["images"], width=2.0, height=1.05)
    _box(ax, xs[1], top, shapes["views"], CONTRAST)
    _box(ax, xs[2], top, shapes["features"])
    _box(ax, xs[3], top, shapes["projections"], CONTRAST)
    _box(ax, xs[4], top, shapes["loss"], CONTRAST, width=2.0, height=1.05)
    _box(ax, 6.6, bottom, shapes["probe"], PROBE, width=2.6)
    _box(ax, 11.1, bottom, f"cross-entropy\nwith the {labelled} labels", PROBE, width=2.0)
    _arrow(ax, (xs[0] + 1.05, top), (xs[1] - 0.85, top), "augment\n(strong) x 2", CONTRAST)
    _arrow(ax, (xs[1] + 0.85, top), (xs[2] - 0.85, top), "encoder\n4 conv layers")
    _arrow(ax, (xs[2] + 0.85, top), (xs[3] - 0.85, top), "projection\nhead")
    _arrow(ax, (xs[3] + 0.85, top), (xs[4] - 1.05, top), "normalise\nrows", CONTRAST)
    _arrow(ax, (xs[0], top - 0.58), (6.6 - 1.35, bottom), "", PROBE, dashed=True)
    ax.text(
        2.2,
        0.9,
        "labelled images: weak augment,\nencoder, then stop-gradient",
        ha="center",
        fontsize=8,
        color=PROBE,
    )
    _arrow(ax, (6.6 + 1.35, bottom), (11.1 - 1.05, bottom), "", PROBE)
    ax.text(
        xs[4],
        top + 0.72,
        "gradient to the encoder and head",
        ha="center",
        fontsize=8,
        color=CONTRAST,
    )
    ax.text(
        11.1, bottom + 0.55, "gradient to the probe only", ha="center", fontsize=8, color=PROBE
    )
    ax.set_xlim(0, 12.2)
    ax.set_ylim(-0.2, 3.5)
    ax.axis("off")
    ax.set_title(
        "One SimCLR pretraining step: what the loss sees (red), and the linear probe (blue)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
