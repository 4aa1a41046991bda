"""What every source gives: its images split into unlabelled, labelled and test (`Splits`),
and a balanced draw of labelled examples."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Splits:
    """uint8 images (N, H, W, 3) and int32 labels (N,) of one source."""

    source: str
    unlabelled: np.ndarray
    labelled_images: np.ndarray
    labelled_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    unlabelled_labels: np.ndarray | None = None  # kept for label sweeps; None on STL-10
    origin: str = "drawn in code"  # where the source's files were read from

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the source and of every image and label drawn: the data's identity in
        cache keys (under a second for the cpu preset's 218 MB, once per `Splits`)."""
        digest = hashlib.blake2b(self.source.encode(), digest_size=16)
        for array in (
            self.unlabelled,
            self.labelled_images,
            self.labelled_labels,
            self.test_images,
            self.test_labels,
        ):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            if array.size:  # an empty split (a folder without labels) has no bytes
                digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_labels(self) -> bool:
        """False for a folder without class folders: pretraining only, no supervised runs."""
        return self.num_classes > 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.unlabelled.shape[1:])

    def summary(self) -> str:
        if not self.has_labels:
            return (
                f"{self.source}: {len(self.unlabelled):,} unlabelled images of "
                f"{'x'.join(map(str, self.image_shape))}, no labels"
            )
        return (
            f"{self.source}: {len(self.unlabelled):,} unlabelled, "
            f"{len(self.labelled_labels):,} labelled "
            f"({len(self.labelled_labels) // self.num_classes} a class), "
            f"{len(self.test_labels):,} test images of {'x'.join(map(str, self.image_shape))}"
        )


def balanced_subset(labels: np.ndarray, per_class: int | None, num_classes: int, seed: int):
    """Sorted indices of `per_class` examples of every class, drawn with `seed` (None: all)."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() == 0:
        missing = int(np.argmin(counts))
        raise ValueError(
            f"class {missing} has no labelled images to draw labels_per_class={per_class} "
            f"from (of {len(labels):,} images); every class needs at least one."
        )
    if per_class > counts.min():
        raise ValueError(
            f"labels_per_class={per_class} is more than the {counts.min()} labelled images "
            f"the smallest class has; allowed: 1 to {counts.min()}."
        )
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
        for c in range(num_classes)
    ]
    return np.sort(np.concatenate(chosen))
