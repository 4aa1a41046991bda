"""The Fashion-MNIST composite: deterministic, label-preserving, every item visible."""

import numpy as np
import pytest

from simclr_lab.config import DataConfig
from simclr_lab.sources import composite, data


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(0)
    images = np.zeros((64, 28, 28), "uint8")
    images[:, 6:22, 8:20] = rng.integers(200, 256, (64, 16, 12))  # a bright block, item-like
    return images


def test_shape_dtype_and_determinism(items):
    first = composite.render_composite(items, seed=3)
    assert first.shape == (64, 32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, composite.render_composite(items, seed=3))
    assert not np.array_equal(first, composite.render_composite(items, seed=4))


def test_backgrounds_are_coloured_and_varied(items):
    images = composite.render_composite(items, seed=0).astype("float32") / 255
    corners = images[:, :3, :3].reshape(len(images), -1, 3).mean(axis=1)  # (N, 3)
    assert corners.std(axis=0).min() > 0.1  # colours differ from image to image
    assert np.abs(corners - corners.mean(axis=1, keepdims=True)).max() > 0.2  # not grey


def test_tints_keep_their_luminance_gap_and_range():
    rng = np.random.default_rng(1)
    background = rng.uniform(0.05, 0.95, 5000)
    tints = composite._tints(background, rng)
    assert tints.min() >= 0 and tints.max() <= 1
    gap = np.abs(tints @ composite.LUMA - background)
    assert gap.min() >= composite.MIN_LUMINANCE_GAP - 1e-5


def test_items_are_scaled_placed_and_visible(items):
    rng = np.random.default_rng(2)
    alpha = composite._placed_items(items, rng)[..., 0]  # (N, 32, 32)
    rows, cols = np.any(alpha > 0.5, axis=2), np.any(alpha > 0.5, axis=1)
    heights, widths = rows.sum(axis=1), cols.sum(axis=1)
    # the 16x12 block of a 28x28 item, scaled by 20/28 to 28/28
    assert heights.min() >= 16 * 20 / 28 - 1 and heights.max() <= 16 + 1
    assert widths.min() >= 12 * 20 / 28 - 1 and widths.max() <= 12 + 1
    assert len({int(np.argmax(r)) for r in rows}) > 5  # placed at many heights
    assert len({int(h) for h in heights}) > 3  # at several scales


def test_every_item_stands_out_from_its_background(items):
    # Blank items draw the same random numbers, so the difference is the item alone.
    with_items = composite.render_composite(items, seed=5).astype("float32") / 255
    blank = composite.render_composite(np.zeros_like(items), seed=5).astype("float32") / 255
    difference = np.abs((with_items - blank) @ composite.LUMA)  # (N, 32, 32)
    assert difference.reshape(len(items), -1).max(axis=1).min() > 0.25


def test_composite_source_keeps_labels_and_splits(monkeypatch, fake_fashion_mnist):
    _, arrays = fake_fashion_mnist
    splits = data.load_splits(
        DataConfig(source="fashion_mnist_composite", image_size=32, labels_per_class=2)
    )
    assert splits.unlabelled.shape == (60, 32, 32, 3)
    np.testing.assert_array_equal(splits.unlabelled_labels, arrays["train_labels"])
    np.testing.assert_array_equal(splits.test_labels, arrays["test_labels"])
    expected = composite.render_composite(
        arrays["train_images"].astype("uint8"), composite.TRAIN_SEED
    )
    np.testing.assert_array_equal(splits.unlabelled, expected)


def test_validation_split_is_held_out_of_training(fake_fashion_mnist):
    _, arrays = fake_fashion_mnist
    splits = data.load_splits(
        DataConfig(
            source="fashion_mnist", image_size=32, labels_per_class=1, evaluate_on="validation"
        )
    )
    assert len(splits.test_labels) == 10 and len(splits.unlabelled) == 50
    train = {img.tobytes() for img in splits.unlabelled}
    assert not any(img.tobytes() in train for img in splits.test_images)  # disjoint
    assert all(img.tobytes() in train for img in splits.labelled_images)
    padded = data.to_rgb(arrays["train_images"].astype("uint8"))
    everything = {img.tobytes() for img in padded}
    assert all(img.tobytes() in everything for img in splits.test_images)  # from train, not test


def test_the_noise_slices_change_memory_only_not_the_rendering(monkeypatch):
    items = np.random.default_rng(1).integers(0, 255, (9, 28, 28)).astype("uint8")
    whole = composite.render_composite(items, seed=7)
    monkeypatch.setattr(composite, "NOISE_SLICE", 2)  # 5 draws instead of 1, in order
    np.testing.assert_array_equal(composite.render_composite(items, seed=7), whole)


def test_contrast_polarity_tells_a_light_item_from_a_dark_one():
    light = np.full((1, 32, 32, 3), 40, "uint8")
    light[0, 8:24, 8:24] = 220  # a light square on a dark background
    dark = 255 - light  # a dark square on a light background
    assert list(composite.contrast_polarity(np.concatenate([light, dark]))) == [1.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        composite.contrast_polarity(np.zeros((2, 32, 32), "uint8"))
