"""Figures for the lessons. Every function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# The reference's comparison: which history key holds each run's classification metric.
_CLASSIFICATION_KEYS = {
    "pretraining": {"accuracy": "val_p_acc", "loss": "val_p_loss"},
    "default": {"accuracy": "val_acc", "loss": "val_loss"},
}


def plot_training_curves(histories: dict[str, dict], metrics=("accuracy", "loss")):
    """Validation accuracy and loss per epoch of several runs, one panel per metric.

    histories: {run name: history dict}. A run called "pretraining" is shown through its
    online probe (val_p_acc / val_p_loss), as in the reference's comparison.
    """
    if not histories:
        raise ValueError("histories is empty: pass at least one run's history.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, history in histories.items():
            keys = _CLASSIFICATION_KEYS.get(name, _CLASSIFICATION_KEYS["default"])
            values = history.get(keys[metric])
            if values is None:
                continue
            values = np.asarray(values) * (100 if metric == "accuracy" else 1)
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {metric}" + (" (%)" if metric == "accuracy" else ""))
        ax.set_title(f"Classification {metric} during training")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_history(history: dict, keys=None, title="Training history"):
    """Chosen keys of one history (default: all) on one axis per key."""
    keys = list(keys or history)
    if not keys:
        raise ValueError("history has no metrics to plot.")
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(history)}.")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker=".")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_images(rows: dict[str, np.ndarray], columns: int = 8):
    """A grid: one row per name, `columns` images per row; images (N, H, W, 3) in [0, 1] or uint8."""
    if not rows:
        raise ValueError("rows is empty: pass at least one named batch of images.")
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(1.3 * columns, 1.4 * len(rows)), squeeze=False
    )
    for r, (name, images) in enumerate(rows.items()):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            images = np.clip(images, 0, 1)
        for c in range(columns):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c])
        axes[r, 0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    return fig
