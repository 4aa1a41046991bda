"""The reference's batch structure: one (unlabelled, labelled) pair of batches per step.

Streams are Keras `PyDataset` objects over in-memory uint8 arrays, so they feed every Keras
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
        if not self.labelled_per_step:
            return f"{self.steps} steps of {self.unlabelled_per_step} unlabelled images"
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


def plan_unlabelled_batches(num_unlabelled: int, batch_size: int) -> BatchPlan:
    """Split an epoch of images without labels into steps of `batch_size` unlabelled images
    (no partial last step)."""
    if num_unlabelled < 2:
        raise ValueError(
            f"pretraining needs at least 2 images (each is the others' negative); there "
            f"{'is' if num_unlabelled == 1 else 'are'} {num_unlabelled:,}. Add images."
        )
    if num_unlabelled < batch_size:
        raise ValueError(
            f"batch_size={batch_size} is more than the {num_unlabelled:,} images there are; "
            f"set pretrain.batch_size to a number from 2 to {num_unlabelled:,}."
        )
    return BatchPlan(num_unlabelled // batch_size, batch_size, 0, False)


def _epoch_order(count: int, needed: int, rng: np.random.Generator) -> np.ndarray:
    """`needed` indices into `count` items: fresh permutations, concatenated as needed."""
    rounds = math.ceil(needed / count)
    return np.concatenate([rng.permutation(count) for _ in range(rounds)])[:needed]


class _EpochStream(keras.utils.PyDataset):
    """Batches of several epochs in one sequence: batch i is a pure function of
    (seed, epoch, step), so the data order never depends on when Keras prefetches, and a run
    resumed at `start_epoch` sees exactly the batches an uninterrupted run would.

    Train with `fit(stream, epochs=..., steps_per_epoch=stream.steps_per_epoch)`.
    """

    def __init__(self, steps_per_epoch: int, epochs: int, seed: int):
        super().__init__()
        self.steps_per_epoch, self.epochs, self.seed = steps_per_epoch, epochs, seed
        self.start_epoch = 0
        self._cached_epoch, self._cached_order = None, None

    def set_start_epoch(self, epoch: int):
        """Begin at `epoch` (the epochs an interrupted run already finished)."""
        self.start_epoch = epoch

    def __len__(self):
        return self.steps_per_epoch * max(1, self.epochs - self.start_epoch)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        epoch, step = divmod(self.start_epoch * self.steps_per_epoch + index, self.steps_per_epoch)
        if epoch != self._cached_epoch:
            self._cached_epoch = epoch
            self._cached_order = self._order(np.random.default_rng([self.seed, epoch]))
        return self._batch(self._cached_order, step)


class PairedStream(_EpochStream):
    """Pretraining input: each step yields ((unlabelled, labelled_images), labels).

    Shapes: unlabelled (U, H, W, 3) uint8, labelled images (L, H, W, 3) uint8, labels (L,).
    Both streams are reshuffled every epoch.
    """

    def __init__(
        self,
        unlabelled,
        labelled_images,
        labelled_labels,
        plan: BatchPlan,
        epochs: int = 1,
        seed: int = 0,
    ):
        super().__init__(plan.steps, epochs, seed)
        self.unlabelled, self.images, self.labels = unlabelled, labelled_images, labelled_labels
        self.plan = plan

    def _order(self, rng):
        plan = self.plan
        return (
            _epoch_order(len(self.unlabelled), plan.steps * plan.unlabelled_per_step, rng),
            _epoch_order(len(self.labels), plan.steps * plan.labelled_per_step, rng),
        )

    def _batch(self, order, step):
        u, n = self.plan.unlabelled_per_step, self.plan.labelled_per_step
        u_idx = order[0][step * u : (step + 1) * u]
        l_idx = order[1][step * n : (step + 1) * n]
        return (self.unlabelled[u_idx], self.images[l_idx]), self.labels[l_idx]


def one_pass_steps(count: int, batch_size: int) -> int:
    """Full batches in one pass over `count` images (at least one)."""
    return max(1, count // batch_size)


class UnlabelledStream(_EpochStream):
    """Pretraining input without labels: each step yields unlabelled images (U, H, W, 3)
    uint8, reshuffled every epoch; `images` may be a memory map (read a batch at a time)."""

    def __init__(self, images, plan: BatchPlan, epochs: int = 1, seed: int = 0):
        super().__init__(plan.steps, epochs, seed)
        self.images, self.plan = images, plan

    def _order(self, rng):
        return _epoch_order(len(self.images), self.plan.steps * self.plan.unlabelled_per_step, rng)

    def _batch(self, order, step):
        u = self.plan.unlabelled_per_step
        return self.images[np.sort(order[step * u : (step + 1) * u])]


class LabelledStream(_EpochStream):
    """Shuffled (images, labels) training batches: full batches, one pass over the images an
    epoch (at least one step; the data repeats if there are fewer images than one batch), or
    `steps_per_epoch` steps, the data repeating as often as that needs."""

    def __init__(
        self, images, labels, batch_size: int, epochs: int = 1, seed: int = 0, steps_per_epoch=None
    ):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: they must match.")
        if len(images) == 0:
            raise ValueError("The stream has no images.")
        super().__init__(steps_per_epoch or one_pass_steps(len(images), batch_size), epochs, seed)
        self.images, self.labels, self.batch_size = images, labels, batch_size

    def _order(self, rng):
        return _epoch_order(len(self.labels), self.steps_per_epoch * self.batch_size, rng)

    def _batch(self, order, step):
        idx = order[step * self.batch_size : (step + 1) * self.batch_size]
        return self.images[idx], self.labels[idx]


class EvalStream(keras.utils.PyDataset):
    """(images, labels) in order, every image once, the last batch possibly smaller."""

    def __init__(self, images, labels, batch_size: int):
        super().__init__()
        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(
                f"{len(images)} test images and {len(labels)} labels: they must match and "
                f"not be empty."
            )
        self.images, self.labels, self.batch_size = images, labels, batch_size

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        window = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.images[window], self.labels[window]
