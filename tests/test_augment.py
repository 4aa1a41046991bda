import keras
import numpy as np
import pytest

from simclr_lab.augment import (
    RandomApply,
    RandomColorAffine,
    RandomFlipTranslateZoom,
    RandomGreyscale,
    get_augmenter,
    zoom_factor,
)


def _images(n=8, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype("float32")


def test_color_affine_shape_dtype_and_range():
    out = keras.ops.convert_to_numpy(RandomColorAffine(0.6, 0.2, seed=1)(_images(), training=True))
    assert out.shape == (8, 32, 32, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_color_affine_is_identity_at_inference():
    images = _images()
    out = RandomColorAffine(0.6, 0.2, seed=1)(images, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), images)


def test_color_affine_changes_images_when_training():
    images = _images()
    out = keras.ops.convert_to_numpy(RandomColorAffine(0.6, 0.2, seed=1)(images, training=True))
    assert np.abs(out - images).mean() > 0.05


def test_color_affine_matches_its_formula():
    # brightness 0, jitter 0 -> s = 1, J = 0: identity even when training.
    images = _images()
    out = RandomColorAffine(0.0, 0.0)(images, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), images, atol=1e-6)
    # A grey pixel times (s I + J): each output channel = grey * (s + column sum of J).
    grey = np.full((4000, 1, 1, 3), 0.5, dtype="float32")
    out = keras.ops.convert_to_numpy(RandomColorAffine(0.5, 0.0, seed=3)(grey, training=True))
    scales = out[:, 0, 0, 0] / 0.5
    assert np.allclose(out[..., 0], out[..., 1])  # no jitter: the scale is shared by colours
    assert 0.5 <= scales.min() < 0.55 and 1.45 < scales.max() <= 1.5  # s ~ U(0.5, 1.5)
    assert abs(scales.mean() - 1.0) < 0.02


def test_color_affine_seeded_determinism():
    images = _images()
    a = RandomColorAffine(0.6, 0.2, seed=7)(images, training=True)
    b = RandomColorAffine(0.6, 0.2, seed=7)(images, training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_color_affine_config_round_trip():
    layer = RandomColorAffine(0.3, 0.1, seed=5, name="colour")
    config = layer.get_config()
    assert config["brightness"] == 0.3 and config["jitter"] == 0.1 and config["seed"] == 5
    clone = RandomColorAffine.from_config(config)
    assert clone.get_config() == config


def test_color_affine_works_in_tf_data():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data maps run TensorFlow ops")
    layer = RandomColorAffine(0.6, 0.2, seed=1)
    dataset = (
        tf.data.Dataset.from_tensor_slices(_images())
        .batch(4)
        .map(lambda x: layer(x, training=True))
    )
    batches = list(dataset.as_numpy_iterator())
    assert [b.shape for b in batches] == [(4, 32, 32, 3)] * 2


@pytest.mark.parametrize("recipe", ["reference", "paper"])
def test_augmenter_really_changes_images_when_training(recipe):
    # keras-cv once shipped augmenters that silently did nothing: check that views differ.
    images = (np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3))).astype("uint8")
    augmenter = get_augmenter(0.25, 0.6, 0.2, recipe=recipe, seed=1)
    a = keras.ops.convert_to_numpy(augmenter(images, training=True))
    b = keras.ops.convert_to_numpy(augmenter(images, training=True))
    plain = keras.ops.convert_to_numpy(augmenter(images, training=False))
    np.testing.assert_allclose(plain, images / 255.0, atol=1e-6)  # only rescaling at inference
    assert a.shape == (16, 32, 32, 3) and a.min() >= 0 and a.max() <= 1
    assert np.abs(a - b).mean() > 0.02 and np.abs(a - plain).mean() > 0.02


def test_grayscale_option_greys_that_share_of_views():
    images = (np.random.default_rng(0).uniform(0, 255, (400, 32, 32, 3))).astype("uint8")
    always = get_augmenter(0.25, 0.6, 0.2, seed=1, grayscale=1.0)(images, training=True)
    always = keras.ops.convert_to_numpy(always)
    np.testing.assert_allclose(always[..., 0], always[..., 2], atol=1e-5)
    some = keras.ops.convert_to_numpy(
        get_augmenter(0.25, 0.6, 0.2, seed=1, grayscale=0.2)(images, training=True)
    )
    grey = np.abs(some[..., 0] - some[..., 2]).max(axis=(1, 2)) < 1e-5  # (400,)
    assert 0.12 < grey.mean() < 0.28  # ~ 80 of 400


def test_paper_recipe_honours_jitter_and_grayscale():
    images = (np.random.default_rng(0).uniform(0, 255, (64, 32, 32, 3))).astype("uint8")

    def views(brightness=0.6, **kwargs):
        augmenter = get_augmenter(1.0, brightness, recipe="paper", seed=1, **kwargs)
        return keras.ops.convert_to_numpy(augmenter(images, training=True))

    # min_area 1 (no crop), no colour strength, no greyscale: only the flip is left.
    for image, view in zip(images / 255.0, views(brightness=0.0, jitter=0.0, grayscale=0.0)):
        assert np.allclose(view, image, atol=1e-5) or np.allclose(view, image[:, ::-1], atol=1e-5)
    always = views(jitter=0.2, grayscale=1.0)
    np.testing.assert_allclose(always[..., 0], always[..., 2], atol=1e-5)
    # jitter is the hue shift: the same draws with and without it differ.
    assert np.abs(views(jitter=0.0, grayscale=0.0) - views(jitter=0.4, grayscale=0.0)).max() > 0.1
    augmenter = get_augmenter(0.25, 0.6, 0.2, recipe="paper")
    (jitter_layer,) = [layer.layer for layer in augmenter.layers if isinstance(layer, RandomApply)]
    assert jitter_layer.hue_factor == pytest.approx(2 * 0.2 * 0.6)  # Keras' factor: twice
    greys = [layer.rate for layer in augmenter.layers if isinstance(layer, RandomGreyscale)]
    assert greys == [0.2]  # the paper's greyscale probability unless told otherwise


def test_zoom_and_translation_ranges_follow_min_area():
    assert zoom_factor(0.25) == pytest.approx(0.5)
    assert zoom_factor(0.75) == pytest.approx(1 - np.sqrt(0.75))
    layers = {type(layer).__name__: layer for layer in get_augmenter(0.25, 0.6, 0.2).layers}
    assert layers["RandomFlipTranslateZoom"].translate == pytest.approx(0.25)
    assert layers["RandomFlipTranslateZoom"].zoom == pytest.approx(0.5)


def _keras_chain(images, flip, shift_pixels, zoom):
    """Keras' RandomFlip, RandomTranslation, RandomZoom one after another, with given draws.

    flip (B, 1) in {0, 1}; shift_pixels (B, 2) as (dy, dx); zoom (B, 2) as (zy, zx).
    """
    flipped = keras.layers.RandomFlip("horizontal").transform_images(
        images, {"flips": flip[:, :, None, None] > 0.5}
    )
    moved = keras.layers.RandomTranslation(0.1, 0.1).transform_images(
        flipped, {"translations": shift_pixels[:, ::-1].astype("float32")}
    )
    zooms = {"height_zoom": zoom[:, 0:1], "width_zoom": zoom[:, 1:2]}
    return keras.ops.convert_to_numpy(keras.layers.RandomZoom(-0.1).transform_images(moved, zooms))


def test_fused_geometry_equals_keras_three_layers_at_whole_pixel_shifts():
    # With whole-pixel shifts the translation resamples nothing, so Keras' three layers and
    # the fused map must give the same pixels; fractional shifts differ only by Keras'
    # second bilinear interpolation.
    rng = np.random.default_rng(0)
    batch, height, width = 16, 20, 24
    images = rng.random((batch, height, width, 3)).astype("float32")
    flip = (np.arange(batch) % 2).astype("float32")[:, None]
    shift_pixels = rng.integers(-6, 7, (batch, 2)).astype("float32")  # beyond the border too
    zoom = rng.uniform(0.5, 1.0, (batch, 2)).astype("float32")
    shift = shift_pixels / np.array([height, width], "float32")
    transforms = RandomFlipTranslateZoom.transforms(flip, shift, zoom, height, width)
    fused = keras.ops.image.affine_transform(images, transforms, fill_mode="reflect")
    expected = _keras_chain(images, flip, shift_pixels, zoom)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused), expected, atol=1e-5)
    assert np.abs(expected[1] - images[1]).max() > 0.1  # the draws really moved the images


def test_fused_geometry_draws_the_keras_layers_distributions():
    layer = RandomFlipTranslateZoom(translate=0.25, zoom=0.5, seed=3)
    flip, shift, zoom = (keras.ops.convert_to_numpy(a) for a in layer.draw(20_000))
    assert set(np.unique(flip)) == {0.0, 1.0} and 0.48 < flip.mean() < 0.52
    for column in range(2):  # height and width drawn independently
        assert -0.25 <= shift[:, column].min() < -0.24 and 0.24 < shift[:, column].max() <= 0.25
        assert abs(shift[:, column].mean()) < 0.01
        assert shift[:, column].std() == pytest.approx(0.5 / np.sqrt(12), rel=0.03)  # uniform
        assert 0.5 <= zoom[:, column].min() < 0.51 and 0.99 < zoom[:, column].max() <= 1.0
        assert zoom[:, column].mean() == pytest.approx(0.75, abs=0.01)
    assert abs(np.corrcoef(zoom[:, 0], zoom[:, 1])[0, 1]) < 0.03
    assert abs(np.corrcoef(shift[:, 0], shift[:, 1])[0, 1]) < 0.03


def test_fused_geometry_is_identity_at_inference_and_round_trips():
    layer = RandomFlipTranslateZoom(translate=0.2, zoom=0.3, seed=1)
    images = np.random.default_rng(1).random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(images, training=False)), images
    )
    trained = keras.ops.convert_to_numpy(layer(images, training=True))
    assert trained.shape == images.shape and np.abs(trained - images).max() > 0.1
    clone = RandomFlipTranslateZoom.from_config(layer.get_config())
    assert (clone.translate, clone.zoom, clone.seed) == (0.2, 0.3, 1)


def test_greyscale_matrix_equals_keras_grayscale():
    images = np.random.default_rng(2).random((64, 8, 8, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(RandomGreyscale(0.5, seed=4)(images, training=True))
    grey = keras.ops.convert_to_numpy(keras.ops.image.rgb_to_grayscale(images))  # (B, H, W, 1)
    is_grey = np.all(np.isclose(out, grey, atol=1e-6), axis=(1, 2, 3))
    is_same = np.all(out == images, axis=(1, 2, 3))
    assert np.all(is_grey | is_same)  # every image is either unchanged or Keras' grey
    assert 16 < is_grey.sum() < 48
    inference = RandomGreyscale(1.0)(images, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(inference), images)


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"min_area": 0.0}, "min_area=0.0"),
        ({"min_area": 1.5}, "min_area=1.5"),
        ({"brightness": -0.1}, "brightness=-0.1"),
        ({"jitter": -1}, "jitter=-1"),
        ({"recipe": "simsiam"}, "simsiam"),
        ({"grayscale": 1.5}, "grayscale=1.5"),
    ],
)
def test_get_augmenter_rejects_bad_values(kwargs, named):
    args = {"min_area": 0.25, "brightness": 0.6, "jitter": 0.2, **kwargs}
    with pytest.raises(ValueError, match=named):
        get_augmenter(**args)
