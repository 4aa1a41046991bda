"""A procedurally drawn image set: the class is a shape, everything else is nuisance.

Each image shows one shape (the class) at a random position and scale, in a random colour,
on a random two-colour gradient background. Position, scale and colour are exactly what the
augmentations (crop/zoom, translation, colour affine) teach an encoder to ignore, so
contrastive pretraining has something real to learn here, in seconds.
"""

from __future__ import annotations

import numpy as np

from simclr_lab.config import MIN_IMAGE_SIZE

CLASS_NAMES = (
    "disk",
    "square",
    "triangle",
    "ring",
    "plus",
    "diamond",
    "striped disk",
    "striped square",
    "checkered square",
    "cross",
)


def _shape_masks(u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of every class, from coordinates relative to the shape (1 = its radius)."""
    radius = np.sqrt(u**2 + v**2)
    box = np.maximum(np.abs(u), np.abs(v))
    disk = radius < 1
    square = box < 0.8
    return [
        disk,
        square,
        (v < 0.7) & (np.abs(u) < (v + 0.9) * 0.55),
        (radius < 1) & (radius > 0.55),
        ((np.abs(u) < 0.3) | (np.abs(v) < 0.3)) & (box < 1),
        np.abs(u) + np.abs(v) < 1,
        disk & (np.sin(v * 3 * np.pi) > 0),
        square & (np.sin(u * 3 * np.pi) > 0),
        square & ((np.floor(u * 2.5) + np.floor(v * 2.5)) % 2 == 0),
        ((np.abs(u - v) < 0.35) | (np.abs(u + v) < 0.35)) & (box < 0.9),
    ]


def make_shapes(count: int, image_size: int = 32, seed: int = 0):
    """`count` images (count, size, size, 3) uint8 and their labels (count,) int32, balanced.

    Deterministic: the same `seed` gives the same images.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} must be a positive integer.")
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size={image_size!r} must be an integer >= {MIN_IMAGE_SIZE}.")
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % len(CLASS_NAMES)).astype("int32")
    rng.shuffle(labels)
    images = np.empty((count, image_size, image_size, 3), dtype="uint8")
    grid = (np.arange(image_size) + 0.5) / image_size  # pixel centres in [0, 1]
    for start in range(0, count, 1024):
        stop = min(start + 1024, count)
        images[start:stop] = _draw(labels[start:stop], grid, rng)
    return images, labels


def _draw(labels: np.ndarray, grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    scale = rng.uniform(0.18, 0.32, size=(n, 1, 1))  # shape radius as a share of the image
    cx = rng.uniform(0.3, 0.7, size=(n, 1, 1))
    cy = rng.uniform(0.3, 0.7, size=(n, 1, 1))
    y, x = grid[None, :, None], grid[None, None, :]
    u, v = (x - cx) / scale, (y - cy) / scale  # (n, size, size)
    masks = np.stack(_shape_masks(u, v), axis=1)  # (n, classes, size, size)
    mask = masks[np.arange(n), labels][..., None]  # (n, size, size, 1)

    angle = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    ramp = (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5) + 0.5)[..., None]
    back_a = rng.uniform(0.0, 1.0, size=(n, 1, 1, 3))
    back_b = rng.uniform(0.0, 1.0, size=(n, 1, 1, 3))
    background = back_a + (back_b - back_a) * ramp
    # The shape's colour keeps a clear distance from the mean background, so it stays visible.
    shade = rng.uniform(0.0, 1.0, size=(n, 1, 1, 3))
    mean_back = (back_a + back_b) / 2
    too_close = np.abs(shade - mean_back).mean(axis=-1, keepdims=True) < 0.3
    shade = np.where(too_close, 1.0 - mean_back, shade)
    picture = np.where(mask, shade, background)
    picture += rng.normal(0.0, 0.03, size=picture.shape)  # a little sensor noise
    return np.clip(picture * 255 + 0.5, 0, 255).astype("uint8")
