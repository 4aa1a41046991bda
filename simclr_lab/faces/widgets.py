"""Interactive explorers (core ipywidgets only, so they also work on Colab).

Each is a widget (display it, or let it be a cell's last line) that also keeps what it last
drew (`views`, `summary`, `results`), so scripts and tests can drive it without a browser.
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets
import keras
import matplotlib.pyplot as plt
import numpy as np

from simclr_lab import evaluate, loss
from simclr_lab.augment import get_augmenter
from simclr_lab.config import RECIPES
from simclr_lab.faces.widget_output import (
    LiveOutput,
    StaticPicture,
    figure_output,
    running_a_cell,
    show,
)
from simclr_lab.runs.devices import machine_name


class AugmentationExplorer(StaticPicture, widgets.VBox):
    """Sliders for min_area, brightness and jitter, a recipe menu and a resample button;
    redraws each image with `views` random views whenever one changes.

    images: uint8 (N, H, W, 3), a handful of them (each becomes one row).
    """

    def __init__(
        self, images, views: int = 4, min_area=0.25, brightness=0.6, jitter=0.2, seed: int = 0
    ):
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 of shape (N, H, W, 3); got {images.dtype} {images.shape}."
            )
        self.images, self.num_views, self.seed = images[:6], views, seed
        slider = dict(
            continuous_update=False, readout_format=".2f", style={"description_width": "80px"}
        )
        self.min_area = widgets.FloatSlider(
            min_area, min=0.05, max=1.0, step=0.05, description="min_area", **slider
        )
        self.brightness = widgets.FloatSlider(
            brightness, min=0.0, max=1.0, step=0.05, description="brightness", **slider
        )
        self.jitter = widgets.FloatSlider(
            jitter, min=0.0, max=0.5, step=0.05, description="jitter", **slider
        )
        self.recipe = widgets.Dropdown(options=RECIPES, value="reference", description="recipe")
        self.resample = widgets.Button(description="Resample", icon="refresh")
        self.output = widgets.Output()
        self.redraws = 0
        for control in (self.min_area, self.brightness, self.jitter, self.recipe):
            control.observe(self.redraw, names="value")
        self.resample.on_click(self.redraw)
        controls = widgets.HBox(
            [
                widgets.VBox([self.min_area, self.brightness, self.jitter]),
                widgets.VBox([self.recipe, self.resample]),
            ]
        )
        super().__init__([controls, self.output])
        self.redraw()

    def redraw(self, *_):
        """Draw fresh views with the current settings."""
        augmenter = get_augmenter(
            self.min_area.value,
            self.brightness.value,
            self.jitter.value,
            self.recipe.value,
            seed=self.seed + self.redraws,
        )
        self.views = np.stack(
            [
                keras.ops.convert_to_numpy(augmenter(self.images, training=True))
                for _ in range(self.num_views)
            ],
            axis=1,
        )  # (N, views, H, W, 3)
        self.redraws += 1
        columns = self.num_views + 1
        fig, axes = plt.subplots(
            len(self.images),
            columns,
            figsize=(1.5 * columns, 1.5 * len(self.images)),
            squeeze=False,
        )
        for row, image in enumerate(self.images):
            pictures = [image / 255.0, *self.views[row]]
            for col, picture in enumerate(pictures):
                axes[row, col].imshow(np.clip(picture, 0, 1))
                axes[row, col].axis("off")
        axes[0, 0].set_title("original", fontsize=9)
        for col in range(1, columns):
            axes[0, col].set_title(f"view {col}", fontsize=9)
        fig.tight_layout()
        show(self.output, fig)


class TemperatureExplorer(StaticPicture, widgets.VBox):
    """A log-scale temperature slider over one batch of real projection pairs.

    Shows the softmax over one anchor's row of S / T, the loss and contrastive accuracy at
    this temperature, and where it sits on the loss-vs-temperature curve.
    projections_1, projections_2: (N, D) projections of two views of the same N images.
    """

    def __init__(
        self,
        projections_1,
        projections_2,
        temperature=0.1,
        row: int = 0,
        loss_name: str = "infonce",
    ):
        self.p1 = np.asarray(projections_1, dtype="float32")
        self.p2 = np.asarray(projections_2, dtype="float32")
        if self.p1.shape != self.p2.shape or self.p1.ndim != 2 or len(self.p1) < 2:
            raise ValueError(
                f"projections must be two (N, D) arrays of one shape with N >= 2; got "
                f"{self.p1.shape} and {self.p2.shape}."
            )
        if not 0 <= row < len(self.p1):
            raise ValueError(f"row={row} must be in [0, {len(self.p1) - 1}].")
        self.row, self.loss_fn = row, loss.get_loss(loss_name)
        self.temperature = widgets.FloatLogSlider(
            temperature,
            base=10,
            min=-2,
            max=1,
            step=0.05,
            description="temperature",
            continuous_update=False,
            readout_format=".3f",
        )
        self.label = widgets.HTML()
        self.output = widgets.Output()
        self.grid = np.logspace(-2, 1, 40)
        self.curve = [self._measure(t)[0] for t in self.grid]
        self.temperature.observe(self.redraw, names="value")
        super().__init__([self.temperature, self.label, self.output])
        self.redraw()

    def _measure(self, temperature):
        value, similarities = self.loss_fn(self.p1, self.p2, temperature)
        accuracy = loss.contrastive_accuracy(similarities)
        return float(value), float(accuracy), keras.ops.convert_to_numpy(similarities)

    def redraw(self, *_):
        t = self.temperature.value
        value, accuracy, similarities = self._measure(t)
        self.summary = {"temperature": t, "loss": value, "contrastive_accuracy": accuracy}
        self.label.value = (
            f"temperature {t:.3f}: loss <b>{value:.3f}</b> "
            f"(chance level log N = {np.log(len(self.p1)):.3f}), "
            f"contrastive accuracy <b>{accuracy:.2f}</b>"
        )
        row = similarities[self.row]
        softmax = np.exp(row - row.max())
        softmax /= softmax.sum()
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
        colours = ["tab:green" if i == self.row else "tab:gray" for i in range(len(row))]
        left.bar(np.arange(len(row)), softmax, color=colours)
        left.set_title(f"softmax over row {self.row} (green: the positive pair)")
        left.set_xlabel("candidate in the other view")
        right.semilogx(self.grid, self.curve)
        right.scatter([t], [value], color="tab:red", zorder=3)
        right.set_xlabel("temperature")
        right.set_ylabel("loss")
        right.set_title("loss of this batch vs temperature")
        fig.tight_layout()
        show(self.output, fig)


class SettingsLab(StaticPicture, widgets.VBox):
    """Pick a temperature and an augmentation strength, press Train, watch it live, and
    collect one row per run (settings -> kNN and linear-probe accuracy) to compare.

    train_fn(temperature, min_area) -> the run of `train.pretrain` (or an encoder) trains
    with a live dashboard; a run loaded from the cache shows "cached" instead of a time;
    splits: the data the frozen features are evaluated on; epochs: how long train_fn
    pretrains (for the table); study: rows of `simclr_lab.studies.study.lab_rows` (the measured
    study), shown first, so each of your runs lands beside them, marked "yours".
    """

    def __init__(self, train_fn, splits, temperature=0.1, min_area=0.25, epochs=1, study=()):
        self.train_fn, self.splits, self.epochs = train_fn, splits, epochs
        self.study = list(study)
        self.temperature = widgets.FloatLogSlider(
            temperature,
            base=10,
            min=-2,
            max=0,
            step=0.1,
            description="temperature",
            readout_format=".3f",
        )
        self.min_area = widgets.FloatSlider(
            min_area, min=0.1, max=1.0, step=0.05, description="min_area", readout_format=".2f"
        )
        self.button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.button.on_click(self.run)
        self.live = LiveOutput()
        self.results: list[dict] = []
        self.table = widgets.HTML(self.table_html())
        super().__init__(
            [widgets.HBox([self.temperature, self.min_area, self.button]), self.live, self.table]
        )

    def run(self, *_):
        """Train with the current settings and add a row to the table. After a click on Train
        the training shows in the lab's own output area; called from a cell, in that cell's
        output, since capturing a running cell's output into a widget is what can stall a
        headless notebook client (see `_show`)."""
        self.button.disabled = True
        try:
            self.live.clear_output()
            start = time.perf_counter()
            if running_a_cell():
                trained = self.train_fn(self.temperature.value, self.min_area.value)
            else:
                with self.live:
                    trained = self.train_fn(self.temperature.value, self.min_area.value)
            seconds = time.perf_counter() - start
            # a run (train.pretrain's result) says whether it only came from the cache
            encoder = getattr(getattr(trained, "model", None), "encoder", trained)
            cached = getattr(trained, "from_cache", False)
            scores = evaluate.frozen_scores(encoder, self.splits)
            self.results.append(
                {
                    "source": "yours",
                    "temperature": self.temperature.value,
                    "min_area": self.min_area.value,
                    "epochs": self.epochs,
                    "seeds": 1,
                    **scores,
                    "seconds": None if cached else seconds,
                    "cached": cached,
                    "machine": machine_name(),
                }
            )
            self.table.value = self.table_html()
        finally:
            self.button.disabled = False

    def static_data(self) -> dict:
        """A picture of the lab (its settings and results table) and the table as HTML, for
        viewers without widget state."""
        rows = self._rows()
        fig, ax = plt.subplots(figsize=(11, 0.8 + 0.3 * max(len(rows), 1)))
        ax.axis("off")
        state = "" if self.results else " (no run of yours yet: press Train)"
        ax.set_title(
            f"Settings lab: temperature {self.temperature.value:.3f}, "
            f"min_area {self.min_area.value:.2f}{state}",
            fontsize=9,
        )
        if rows:
            table = ax.table(cellText=rows, colLabels=self.COLUMNS, loc="center")
            table.auto_set_font_size(False)
            table.set_fontsize(7)
            table.auto_set_column_width(list(range(len(self.COLUMNS))))  # no text over a line
            for (row, _), cell in table.get_celld().items():
                if row > len(self.study):  # your runs, below the study's
                    cell.set_text_props(fontweight="bold")
        picture = figure_output(fig)["data"]
        plt.close(fig)
        images = {mime: data for mime, data in picture.items() if mime.startswith("image/")}
        return {"text/html": self.table_html(), **images}

    COLUMNS = (
        "source",
        "temperature",
        "min_area",
        "pretraining",
        "kNN accuracy",
        "linear probe accuracy",
        "time",
        "machine",
    )

    def _rows(self) -> list[list[str]]:
        cells = []
        for r in self.study + self.results:
            seeds = f", {r['seeds']} seeds" if r["seeds"] > 1 else ""
            took = (
                "cached" if r.get("cached") else f"{r['seconds']:.0f} s" if r["seconds"] else "n/a"
            )
            cells.append(
                [
                    "study" if r["source"] == "shipped" else r["source"],
                    f"{r['temperature']:.3f}",
                    f"{r['min_area']:.2f}",
                    f"{r['epochs']} epoch{'s' if r['epochs'] != 1 else ''}{seeds}",
                    f"{r['knn_acc'] * 100:.1f}%",
                    f"{r['linear_probe_acc'] * 100:.1f}%",
                    took,
                    r["machine"],
                ]
            )
        return cells

    def table_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.COLUMNS)
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td><b>{html.escape(c)}</b></td>"
                if row[0] == "yours"
                else f"<td>{html.escape(c)}</td>"
                for c in row
            )
            + "</tr>"
            for row in self._rows()
        )
        return f"<table><tr>{head}</tr>{rows}</table>"
