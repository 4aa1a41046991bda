"""The reference's batch structure: one (unlabelled, labelled) pair of batches per step.

Streams are `keras.utils.PyDataset`s over in-memory uint8 arrays, so they feed every Keras
backend (TensorFlow, JAX, PyTorch) without tf.data. Images stay uint8 until the model's
first layer rescales them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """How one pretraining epoch is cut into steps."""

    steps: int
    unlabelled_per_step: int
    labelled_per_step: int
    repeats_labelled: bool  # True when the labelled stream cycles more than once an epoch

    def describe(self) -> str:
        note = ", labelled stream repeating" if self.repeats_labelled else ""
        return (
            f"{self.steps} steps of {self.unlabelled_per_step} unlabelled + "
            f"{self.labelled_per_step} labelled images{note}"
        )


def plan_batches(
    num_unlabelled: int, num_labelled: int, batch_size: int, labelled_per_step: int | None = None
) -> BatchPlan:
    """Split an epoch into steps.

    With `labelled_per_step=None` this is the reference's formula:
    steps = (U + L) // batch_size, U // steps unlabelled and L // steps labelled a step
    (100,000 + 5,000 at 525 -> 200 steps of 500 + 25). With `labelled_per_step` set, each step
    takes that many labelled images (the labelled stream repeats as needed) and
    batch_size - labelled_per_step unlabelled ones; steps = U // that, no partial last step.
    """
    if num_unlabelled < 1 or num_labelled < 1:
        raise ValueError(
            f"Need at least one unlabelled and one labelled image; got "
            f"num_unlabelled={num_unlabelled}, num_labelled={num_labelled}."
        )
    if labelled_per_step is None:
        steps = (num_unlabelled + num_labelled) // batch_size
        if steps < 1 or num_labelled // steps == 0:
            raise ValueError(
                f"batch_size={batch_size} with {num_unlabelled:,} unlabelled and "
                f"{num_labelled:,} labelled images leaves 0 labelled images per step under the "
                f"reference's formula; set labelled_per_step (e.g. 25) so the labelled stream "
                f"repeats, or use a batch_size of at most {num_unlabelled + num_labelled}."
            )
        return BatchPlan(steps, num_unlabelled // steps, num_labelled // steps, False)
    unlabelled_per_step = batch_size - labelled_per_step
    if unlabelled_per_step < 1:
        raise ValueError(
            f"labelled_per_step={labelled_per_step} leaves no unlabelled images in a batch of "
            f"{batch_size}; it must be below batch_size."
        )
    steps = num_unlabelled // unlabelled_per_step
    if steps < 1:
        raise ValueError(
            f"batch_size={batch_size} asks for {unlabelled_per_step} unlabelled images a step "
            f"but only {num_unlabelled} exist; use a batch_size of at most "
            f"{num_unlabelled + labelled_per_step}."
        )
    repeats = steps * labelled_per_step > num_labelled
    return BatchPlan(steps, unlabelled_per_step, labelled_per_step, repeats)


def _epoch_order(count: int, needed: int, rng: np.random.Generator) -> np.ndarray:
    """`needed` indices into `count` items: fresh permutations, concatenated as needed."""
    rounds = math.ceil(needed / count)
    return np.concatenate([rng.permutation(count) for _ in range(rounds)])[:needed]


class PairedStream(keras.utils.PyDataset):
    """Pretraining input: step i yields ((unlabelled, labelled_images), labels).

    Shapes: unlabelled (U, H, W, 3) uint8, labelled images (L, H, W, 3) uint8, labels (L,).
    Both streams are reshuffled every epoch from `seed` and the epoch number.
    """

    def __init__(self, unlabelled, labelled_images, labelled_labels, plan: BatchPlan, seed=0):
        super().__init__()
        self.unlabelled, self.images, self.labels = unlabelled, labelled_images, labelled_labels
        self.plan, self.seed, self.epoch = plan, seed, 0
        self._shuffle()

    def _shuffle(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        plan = self.plan
        self.u_order = _epoch_order(len(self.unlabelled), plan.steps * plan.unlabelled_per_step, rng)
        self.l_order = _epoch_order(len(self.labels), plan.steps * plan.labelled_per_step, rng)

    def __len__(self):
        return self.plan.steps

    def __getitem__(self, index):
        if index >= self.plan.steps:
            raise IndexError(index)
        u, n = self.plan.unlabelled_per_step, self.plan.labelled_per_step
        u_idx = self.u_order[index * u : (index + 1) * u]
        l_idx = self.l_order[index * n : (index + 1) * n]
        return (self.unlabelled[u_idx], self.images[l_idx]), self.labels[l_idx]

    def on_epoch_end(self):
        self.epoch += 1
        self._shuffle()


class LabelledStream(keras.utils.PyDataset):
    """(images, labels) batches: shuffled full batches for training, or in order for testing.

    Training streams drop the partial last batch (at least one step per epoch, repeating the
    data if there are fewer images than one batch); test streams keep every image.
    """

    def __init__(self, images, labels, batch_size: int, shuffle: bool, seed=0):
        super().__init__()
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: they must match.")
        if len(images) == 0:
            raise ValueError("The stream has no images.")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
        if shuffle:
            self.steps = max(1, len(images) // batch_size)
        else:
            self.steps = math.ceil(len(images) / batch_size)
        self._shuffle()

    def _shuffle(self):
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            self.order = _epoch_order(len(self.labels), self.steps * self.batch_size, rng)
        else:
            self.order = np.arange(len(self.labels))

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        if index >= self.steps:
            raise IndexError(index)
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.images[idx], self.labels[idx]

    def on_epoch_end(self):
        self.epoch += 1
        self._shuffle()
