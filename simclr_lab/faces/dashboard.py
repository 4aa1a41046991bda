"""`LiveDashboard`: watch training while `fit` runs, and stop it with a button.

The figure is shown with `display(fig, display_id=True)` and updated in place, so it moves
live in JupyterLab and Colab and the saved notebook keeps the last frame as a static image.
While `fit` runs the kernel is busy, so the callback polls for widget events
(jupyter-ui-poll) to see a click on Stop. Outside a notebook it records and shows nothing.
"""

from __future__ import annotations

import time

import keras
import matplotlib.pyplot as plt
import numpy as np

from simclr_lab.evaluate import accuracy_key
from simclr_lab.runs.devices import describe
from simclr_lab.runs.distribute import Spread, active

# What to draw for each phase: panels of (title, [history keys]).
PANELS = {
    "pretraining": [
        ("contrastive loss", ["c_loss", "val_c_loss"]),
        ("contrastive accuracy", ["c_acc", "val_c_acc"]),
        ("probe accuracy", ["p_acc", "val_p_acc", "val_knn_acc"]),
    ],
    "supervised": [("loss", ["loss", "val_loss"]), ("accuracy", ["acc", "val_acc"])],
}
# Panels drawn only once a callback adds their keys (`diagnostics.DiagnosticsMonitor`).
OPTIONAL_PANELS = {
    "pretraining": [
        ("std of normalised projections", ["val_emb_std"]),
        ("effective rank", ["val_eff_rank"]),
    ],
    "supervised": [],
}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, nbval), False in scripts and tests."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def stop_button(widgets):
    """The dashboard's "Stop training" button; its saved output also holds the button as HTML,
    which viewers without widget state (GitHub, Colab before it runs) show instead."""
    from simclr_lab.faces.widget_output import StaticPicture

    class StopButton(StaticPicture, widgets.Button):
        def static_data(self) -> dict:
            return {
                "text/html": f"<button disabled>{self.description}</button> <small>(in "
                "JupyterLab, a live button: training stops after the current step)</small>"
            }

    return StopButton(description="Stop training", button_style="warning", icon="stop")


class LiveDashboard(keras.callbacks.Callback):
    """Curves, images/s, ETA and device during `fit`; a Stop button ends training early.

    batch_size: images per step (the global batch), for throughput; the devices `fit` runs on
    and each one's share of the batch are shown under the curves. update_every: redraw every
    N batches (and at every epoch end); a run resumed at epoch k counts only the epochs it
    runs in its ETA.
    `frames` counts redraws and `rows` holds what was shown, so scripts and tests can check
    it; `show=False` (or no notebook) records without displaying.
    """

    def __init__(self, phase="pretraining", batch_size=None, update_every=10, show=None):
        super().__init__()
        if phase not in PANELS:
            raise ValueError(f"Unknown phase={phase!r}; allowed: {', '.join(map(repr, PANELS))}.")
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"update_every={update_every!r} must be a positive integer.")
        self.phase, self.batch_size, self.update_every = phase, batch_size, update_every
        self.show = in_notebook() if show is None else show
        self.history: dict[str, list] = {}  # per epoch, as Keras logs it
        self.step_history: dict[str, list] = {}  # training metrics per step: [(epoch, value)]
        self.rows: list[dict] = []
        self.frames = 0
        self.stop_requested = False
        self._figure = self._handle = self._status = self._poll = self._poll_context = None
        self.button = None
        self.spread = Spread()  # the devices of the `fit` being watched (`on_train_begin`)

    # -- Keras hooks ---------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._steps_done = 0
        self._first_epoch = None  # a resumed run begins past 0 (Keras BackupAndRestore)
        self.spread = active()
        if self.show:
            self._open()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self._first_epoch is None:
            self._first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done += 1
        position = self.epoch + (batch + 1) / (self.params.get("steps") or 1)
        for name, value in (logs or {}).items():  # the epoch's running means so far
            self.step_history.setdefault(name, []).append((position, float(value)))
        if self._poll:
            self._poll(10)  # lets the kernel see a click on Stop
        if self.stop_requested:
            self.model.stop_training = True
        if (batch + 1) % self.update_every == 0:
            self._refresh()

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self._refresh()

    def on_train_end(self, logs=None):
        if self._poll_context is not None:
            self._poll_context.__exit__(None, None, None)
            self._poll_context = self._poll = None
        if self.button is not None:
            self.button.disabled = True
        if self._figure is not None:
            plt.close(self._figure)

    # -- what is shown ---------------------------------------------------------------------------
    def status(self) -> dict:
        """Throughput, progress and ETA so far."""
        elapsed = time.perf_counter() - self._start
        steps_per_s = self._steps_done / elapsed if elapsed > 0 else 0.0
        epochs = (self.params.get("epochs") or 1) - (self._first_epoch or 0)  # this session's
        left = max(epochs * (self.params.get("steps") or 1) - self._steps_done, 0)
        return {
            "epoch": getattr(self, "epoch", 0) + 1,
            "steps": self._steps_done,
            "elapsed_s": elapsed,
            "images_per_s": steps_per_s * (self.batch_size or 0),
            "eta_s": left / steps_per_s if steps_per_s else float("nan"),
            "val_accuracy": self._last_accuracy(),
            "devices": self.spread.devices,
        }

    def _last_accuracy(self) -> float:
        try:
            return self.history[accuracy_key(self.history)][-1]
        except ValueError:  # no epoch finished yet, or fit without validation data
            return float("nan")

    def _status_html(self, row) -> str:
        throughput = f"{row['images_per_s']:.0f} images/s · " if self.batch_size else ""
        eta = "" if np.isnan(row["eta_s"]) else f" · ETA {row['eta_s']:.0f} s"
        accuracy = row["val_accuracy"]
        accuracy = "" if np.isnan(accuracy) else f" · held-out accuracy {accuracy:.1%}"
        state = " · stopping…" if self.stop_requested else ""
        return (
            f"<b>{self.phase}</b> epoch {row['epoch']}/{self.params.get('epochs')} · "
            f"{throughput}{row['elapsed_s']:.0f} s elapsed{eta}{accuracy}{state}<br>"
            f"<small>{describe()}; {self.spread.describe(self.batch_size)}</small>"
        )

    def _open(self):
        import ipywidgets as widgets
        from IPython.display import HTML, display

        self.button = stop_button(widgets)
        self.button.on_click(self._request_stop)
        display(self.button)
        self._status = display(HTML("starting…"), display_id=True)
        self._figure = self._draw()
        self._handle = display(self._figure, display_id=True)
        try:
            from jupyter_ui_poll import ui_events

            self._poll_context = ui_events()
            self._poll = self._poll_context.__enter__()
        except ImportError:  # without it the Stop button only acts after the cell
            self._poll = None

    def _request_stop(self, _button=None):
        self.stop_requested = True

    def _refresh(self):
        row = self.status()
        self.rows.append(row)
        self.frames += 1
        if not self.show or self._handle is None:
            return
        from IPython.display import HTML

        self._status.update(HTML(self._status_html(row)))
        plt.close(self._figure)
        self._figure = self._draw()
        self._handle.update(self._figure)

    def _draw(self):
        """Training metrics as lines over steps, validation metrics as dots at epoch ends."""
        panels = PANELS[self.phase] + [
            (title, keys)
            for title, keys in OPTIONAL_PANELS[self.phase]
            if any(self.history.get(key) for key in keys)
        ]
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3), squeeze=False)
        for ax, (title, keys) in zip(axes[0], panels):
            for key in keys:
                if not key.startswith("val_") and self.step_history.get(key):
                    x, y = zip(*self.step_history[key])
                    ax.plot(x, y, label=f"{key} (per step)")
                elif self.history.get(key):
                    values = self.history[key]
                    ax.plot(np.arange(1, len(values) + 1), values, "o-", label=key)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        fig.tight_layout()
        return fig
