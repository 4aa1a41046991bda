"""What every training phase runs beside `fit`: a stop on NaN, the history saved after each
epoch, the epoch backup a resumed run starts from, and augmentation seeds set per epoch."""

from __future__ import annotations

import math

import keras
import numpy as np


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class StopOnNaN(keras.callbacks.Callback):
    """Raises TrainingDiverged, with advice, as soon as a loss is NaN or infinite."""

    def __init__(self, phase: str):
        super().__init__()
        self.phase, self.epoch = phase, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if "loss" in name and not math.isfinite(float(value)):
                raise TrainingDiverged(
                    f"{self.phase}: {name} became {value} in epoch {self.epoch + 1}, step "
                    f"{batch + 1}; nothing was cached. Try a lower learning rate or a higher "
                    f"temperature."
                )


class HistoryLog(keras.callbacks.Callback):
    """Collects the history of whole epochs, starting from a resumed run's `history`."""

    def __init__(self, history: dict | None = None):
        super().__init__()
        self.history = {name: list(values) for name, values in (history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:  # stopped mid-epoch: a partial epoch is not recorded
            return
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))


class EpochCheckpoint(keras.callbacks.Callback):
    """After every whole epoch, the run's resume state (`RunDir.save_checkpoint`): weights,
    then the epoch and the history so far. Runs after `history_log`."""

    def __init__(self, run, history_log: HistoryLog):
        super().__init__()
        self.run, self.history_log = run, history_log

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.stop_training:  # a stop mid-epoch keeps the last whole epoch
            self.run.save_checkpoint(self.model, self.history_log.history, epoch + 1)


class ReseedAugmentation(keras.callbacks.Callback):
    """Sets every random layer's seed state from (seed, epoch) when an epoch begins.

    Keras does not save seed-generator states with the weights, so without this a resumed
    run would draw other augmentations than an uninterrupted one.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]
        for index, state in enumerate(states):
            start = (self.seed * 1_000_003 + index * 7_919 + epoch * 104_729) % 2**31
            state.assign(np.array([start, 0]).astype(state.dtype))
