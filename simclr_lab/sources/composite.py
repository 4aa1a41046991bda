"""Fashion-MNIST composite: each real item re-drawn, tinted, on a coloured background.

Plain Fashion-MNIST items are centred, upright, grey on black: a supervised network learns
them from few labels, so pretraining has little to add. The composite keeps every item and
its label but adds the nuisances SimCLR's augmentations teach invariance to, in amounts an
encoder can still learn on a CPU:

- background: a linear gradient between two colours across the image, in a random
  direction; the second colour differs from the first by at most 0.25 a channel;
- item: the 28x28 image scaled to 20-28 pixels, placed anywhere inside the 32x32 frame,
  its intensity used as opacity over the background, in one colour whose luminance is at
  least 0.4 away from the background's mean luminance (so every item stays clearly visible);
- noise: independent per-pixel, per-channel uniform noise of amplitude 0.05-0.15.

The transform is a deterministic function of the images and a seed (one fixed rendering per
image, the same on every machine): `render_composite(images, seed)`.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 32
ITEM_SIZES = (20, 28)  # smallest and largest item side, pixels
BACKGROUND_SPREAD = 0.25  # largest per-channel difference between the gradient's two colours
MIN_LUMINANCE_GAP = 0.4  # item tint vs background mean
NOISE_AMPLITUDE = (0.05, 0.15)
LUMA = np.array([0.299, 0.587, 0.114], dtype="float32")  # ITU-R BT.601 luminance weights
TRAIN_SEED, TEST_SEED = 20_241, 20_242  # the renderings every user gets for each split
NOISE_SLICE = 1024  # images whose noise is drawn at once (memory only: not the result)


def render_composite(images: np.ndarray, seed: int, chunk: int = 4096) -> np.ndarray:
    """(N, 28, 28) uint8 grey items -> (N, 32, 32, 3) uint8 composites, fixed by `seed`."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(
            f"render_composite expects uint8 images of shape (N, 28, 28); received "
            f"{images.dtype} {images.shape}."
        )
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), IMAGE_SIZE, IMAGE_SIZE, 3), dtype="uint8")
    for start in range(0, len(images), chunk):
        stop = min(start + chunk, len(images))
        out[start:stop] = _render_chunk(images[start:stop], rng)
    return out


def _render_chunk(items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(items)
    background = _gradients(n, rng)  # (n, 32, 32, 3) in [0, 1]
    alpha = _placed_items(items, rng)  # (n, 32, 32, 1) in [0, 1]
    mean_luminance = background.mean(axis=(1, 2)) @ LUMA  # (n,)
    tint = _tints(mean_luminance, rng)[:, None, None, :]  # (n, 1, 1, 3)
    image = background  # blended in place: the same sums, without a second float64 copy
    image *= 1 - alpha
    image += tint * alpha
    del alpha
    amplitude = rng.uniform(*NOISE_AMPLITUDE, size=(n, 1, 1, 1)).astype("float32")
    # The noise is drawn in slices, in order: the same numbers as one draw of the whole
    # chunk (the renderings, and so the data fingerprints, stay as they were), a quarter of
    # the memory at a time.
    for start in range(0, n, NOISE_SLICE):
        part = slice(start, min(start + NOISE_SLICE, n))
        noise = rng.uniform(-1, 1, size=image[part].shape).astype("float32")
        image[part] += amplitude[part] * noise
    image *= 255
    image += 0.5
    return np.clip(image, 0, 255, out=image).astype("uint8")


def _gradients(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two-colour linear gradients in random directions, (n, 32, 32, 3) float64 in [0, 1]."""
    first = rng.uniform(0.1, 0.9, size=(n, 3)).astype("float32")
    second = np.clip(first + rng.uniform(-1, 1, size=(n, 3)) * BACKGROUND_SPREAD, 0, 1)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    grid = (np.arange(IMAGE_SIZE, dtype="float32") + 0.5) / IMAGE_SIZE - 0.5  # (32,)
    along = (
        np.cos(angle)[:, None, None] * grid[None, None, :]
        + np.sin(angle)[:, None, None] * (grid[None, :, None])
    )  # (n, 32, 32), in [-0.71, 0.71]
    weight = (along / np.sqrt(2) + 0.5)[..., None].astype("float32")  # (n, 32, 32, 1) in [0, 1]
    blend = second[:, None, None, :] * weight  # float64, as `second` is
    blend += first[:, None, None, :] * (1 - weight)  # a + b == b + a: the same numbers
    return blend


def _placed_items(items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each item resized to a random side and pasted at a random place: opacity (n, 32, 32, 1)."""
    n = len(items)
    sides = rng.integers(ITEM_SIZES[0], ITEM_SIZES[1] + 1, size=n)
    offsets = rng.integers(0, IMAGE_SIZE - sides[:, None] + 1, size=(n, 2))  # (n, 2): row, col
    alpha = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE, 1), dtype="float32")
    for side in np.unique(sides):
        chosen = np.flatnonzero(sides == side)
        scaled = _resize_bilinear(items[chosen].astype("float32") / 255, int(side))
        for index, item in zip(chosen, scaled):
            row, col = offsets[index]
            alpha[index, row : row + side, col : col + side, 0] = item
    return alpha


def _resize_bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """(n, 28, 28) float -> (n, side, side), bilinear with pixel centres aligned."""
    size = images.shape[1]
    coords = (np.arange(side) + 0.5) * size / side - 0.5
    low = np.clip(np.floor(coords).astype(int), 0, size - 1)
    high = np.clip(low + 1, 0, size - 1)
    frac = np.clip(coords - low, 0, 1).astype("float32")
    rows = images[:, low, :] * (1 - frac)[None, :, None] + images[:, high, :] * frac[None, :, None]
    return rows[:, :, low] * (1 - frac)[None, None, :] + rows[:, :, high] * frac[None, None, :]


def _tints(background_luminance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One colour per image, its luminance >= MIN_LUMINANCE_GAP from the background's: (n, 3)."""
    n = len(background_luminance)
    darker = np.clip(background_luminance - MIN_LUMINANCE_GAP, 0, None)  # room below
    lighter = np.clip(1 - background_luminance - MIN_LUMINANCE_GAP, 0, None)  # room above
    pick = rng.uniform(size=n) * (darker + lighter)
    above = background_luminance + MIN_LUMINANCE_GAP + pick - darker
    target = np.where(pick < darker, pick, above)
    # A random hue at that luminance: grey at `target` plus a luminance-free colour offset,
    # shrunk until every channel lies in [0, 1].
    offset = rng.uniform(-1, 1, size=(n, 3))
    offset -= (offset @ LUMA)[:, None]  # zero luminance
    room = np.minimum(target, 1 - target)[:, None]  # (n, 1)
    shrink = np.minimum(1.0, room / np.maximum(np.abs(offset).max(axis=1, keepdims=True), 1e-6))
    return np.clip(target[:, None] + offset * shrink, 0, 1).astype("float32")  # rounding


def contrast_polarity(images: np.ndarray, margin: float = 0.2) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N,) 1.0 where the item is lighter than its background, 0.0
    where darker. The background is the border's mean luminance; the item, the pixels whose
    luminance differs from it by more than `margin` (the composite keeps every item at least
    0.4 away from its background)."""
    images = np.asarray(images, dtype="float32") / 255.0
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3); got shape {images.shape}.")
    luminance = images @ np.array([0.299, 0.587, 0.114], dtype="float32")  # (N, H, W)
    border = np.concatenate(
        [luminance[:, 0], luminance[:, -1], luminance[:, :, 0], luminance[:, :, -1]], axis=1
    ).mean(axis=1)  # (N,)
    difference = luminance - border[:, None, None]
    item = np.abs(difference) > margin
    lighter = np.where(item, difference, 0.0).sum(axis=(1, 2))  # signed sum over the item
    return (lighter > 0).astype("float32")
