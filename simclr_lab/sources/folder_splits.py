"""A decoded folder of images as `Splits`: a held-out test share of every class, labelled
examples drawn from the rest, and the settings that point a preset at a folder."""

from __future__ import annotations

import numpy as np

from simclr_lab.config import MAX_TEST, DataConfig
from simclr_lab.sources.folder import (
    TEST_FRACTION,
    TEST_SEED,
    FolderError,
    _shown,
    load_folder,
    scan_folder,
)
from simclr_lab.sources.splits import Splits, balanced_subset


def held_out_counts(class_sizes, total_test: int | None = None) -> np.ndarray:
    """Images held out for testing per class (K,): a fifth of each (or `total_test` shared in
    proportion), at least one, at most MAX_TEST in all, always leaving one for labels."""
    sizes = np.asarray(class_sizes)
    fraction = TEST_FRACTION if total_test is None else total_test / sizes.sum()
    fraction = min(fraction, MAX_TEST / sizes.sum())
    return np.clip(np.round(sizes * fraction).astype(int), 1, np.maximum(sizes - 1, 1))


def _check_class_sizes(sizes, names, config: DataConfig, where: str, path) -> None:
    """FolderError naming the class folders too small for a test image and the labels asked."""
    sizes = np.asarray(sizes)
    held = held_out_counts(sizes, config.num_test)
    left = sizes - held
    needed = config.labels_per_class or 1  # None: every image left is a label
    small = [i for i in range(len(sizes)) if sizes[i] < 2 or left[i] < needed]
    if not small:
        return
    detail = _shown(f"{names[i]}/ ({sizes[i]:,} {where}, {max(left[i], 0):,} left)" for i in small)
    most = int(left.min())
    hint = (
        f"set data.labels_per_class to at most {most} (--set data.labels_per_class={most})"
        if most >= 1
        else "put at least 2 images in every class folder"
    )
    held_out = (
        "a fifth of each class is held out for testing"
        if config.num_test is None
        else f"data.num_test={config.num_test:,} test images are held out, shared in proportion"
    )
    raise FolderError(
        f"data.folder={str(path)!r}: every class needs one image for the test split and "
        f"labels_per_class={config.labels_per_class} for labels, after {held_out}; too few "
        f"in {detail}. Add images or {hint}."
    )


def folder_splits(config: DataConfig, cache_dir=None, log=print) -> Splits:
    """Splits of `config.folder`: every image unlabelled (a memory map); with class folders,
    a seeded fifth of each class held out as the test split and the labelled subset
    (`labels_per_class` a class, seeded) drawn from the rest. Pretraining sees every image,
    test images included, without their labels."""
    size = config.image_size
    scan = scan_folder(config.folder)  # cheap: refuse small classes before decoding
    if scan.labels is not None:
        sizes = np.bincount(scan.labels, minlength=len(scan.class_names))
        _check_class_sizes(sizes, scan.class_names, config, "files", config.folder)
    decoded = load_folder(config.folder, size, cache_dir, log)
    images = decoded.images
    unlabelled = images if config.num_unlabelled is None else images[: config.num_unlabelled]
    if config.num_unlabelled is not None and config.num_unlabelled > len(images):
        raise FolderError(
            f"num_unlabelled={config.num_unlabelled:,} but data.folder={config.folder!r} holds "
            f"{len(images):,} images; set it to at most that, or to null for all."
        )
    empty = np.zeros((0, size, size, 3), dtype="uint8")
    if decoded.labels is None:
        no_labels = np.zeros(0, dtype="int32")
        return Splits(
            "folder", unlabelled, empty, no_labels, empty, no_labels, (), origin=str(decoded.root)
        )
    labels, names = decoded.labels, decoded.class_names
    sizes = np.bincount(labels, minlength=len(names))
    _check_class_sizes(sizes, names, config, "readable images", config.folder)
    test = _held_out(labels, held_out_counts(sizes, config.num_test))
    pool = np.setdiff1d(np.arange(len(labels)), test)
    chosen = pool[balanced_subset(labels[pool], config.labels_per_class, len(names), config.seed)]
    return Splits(
        "folder",
        unlabelled,
        np.asarray(images[chosen]),
        labels[chosen],
        np.asarray(images[test]),
        labels[test],
        names,
        None,  # no label sweep: the unlabelled pool holds the test images
        str(decoded.root),
    )


def _held_out(labels: np.ndarray, per_class: np.ndarray) -> np.ndarray:
    """Sorted indices of `per_class[c]` images of every class c, drawn with TEST_SEED."""
    rng = np.random.default_rng(TEST_SEED)
    chosen = [
        rng.permutation(np.flatnonzero(labels == c))[:count] for c, count in enumerate(per_class)
    ]
    return np.sort(np.concatenate(chosen))
