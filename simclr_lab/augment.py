"""Augmentations: the reference's random colour affine and the two augmenter recipes.

SimCLR learns what two random views of one image have in common, so the augmentations
define what the encoder learns to ignore: position and scale (crop/zoom, translation),
left-right orientation (flip) and colour (brightness and channel mixing).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from simclr_lab.config import RECIPES


def _check_number(name: str, value, low: float, high: float | None = None, low_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (high is None or value <= high)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}"
        raise ValueError(
            f"Expected {name} in {bounds}{']' if high is not None else ')'}. "
            f"Received: {name}={value!r}"
        )


def apply_color_affine(images, scale, mixing):
    """clip(pixel @ (scale * I + mixing), 0, 1) for every pixel of every image.

    images (B, H, W, 3) in [0, 1]; scale (B, 1, 1); mixing (B, 3, 3).
    """
    scale, mixing = ops.cast(scale, images.dtype), ops.cast(mixing, images.dtype)
    matrix = scale * ops.eye(3, dtype=images.dtype) + mixing  # (B, 3, 3)
    return ops.clip(ops.einsum("bhwc,bcd->bhwd", images, matrix), 0.0, 1.0)


@keras.saving.register_keras_serializable(package="simclr_lab")
class RandomColorAffine(keras.layers.Layer):
    """Random per-image colour affine: pixel (1, 3) @ (s * I + J), clipped to [0, 1].

    s ~ U(1 - brightness, 1 + brightness) is one scalar per image; J ~ U(-jitter, jitter) is a
    3x3 matrix per image. Input: float images (B, H, W, 3) in [0, 1]. Identity at inference.
    """

    def __init__(self, brightness=0.0, jitter=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_number("brightness", brightness, 0)
        _check_number("jitter", jitter, 0)
        self.brightness, self.jitter, self.seed = brightness, jitter, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = ops.shape(images)[0]
        scale = keras.random.uniform(
            (batch, 1, 1), 1 - self.brightness, 1 + self.brightness, seed=self.seed_generator
        )  # (B, 1, 1)
        mixing = keras.random.uniform(
            (batch, 3, 3), -self.jitter, self.jitter, seed=self.seed_generator
        )  # (B, 3, 3)
        return apply_color_affine(images, scale, mixing)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(brightness=self.brightness, jitter=self.jitter, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="simclr_lab")
class RandomFlipTranslateZoom(keras.layers.Layer):
    """Keras' RandomFlip("horizontal"), RandomTranslation and RandomZoom as one resampling.

    Per image, as those layers draw them: a left-right flip with probability 1/2, a shift by
    U(-translate, translate) of the height and (independently) of the width, and a zoom-in
    to U(1 - zoom, 1) of the height and (independently) of the width about the centre. All
    three are one axis-aligned affine map of pixel coordinates, so the image is resampled
    once (bilinear, reflecting at the borders, as those layers do) instead of three times:
    the same distribution of views at about a third of the cost, and one interpolation blur
    instead of two. Input: float images (B, H, W, C). Identity at inference.
    """

    def __init__(self, translate=0.0, zoom=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_number("translate", translate, 0, 1)
        _check_number("zoom", zoom, 0, 1)
        self.translate, self.zoom, self.seed = translate, zoom, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def draw(self, batch):
        """Random (flip, shift, zoom) per image: flip (B, 1) in {0, 1}; shift (B, 2) as
        fractions of (height, width); zoom (B, 2) factors for (height, width), <= 1."""
        coin = keras.random.uniform((batch, 1), seed=self.seed_generator)
        flip = ops.cast(coin <= 0.5, "float32")
        shift = keras.random.uniform(
            (batch, 2), -self.translate, self.translate, seed=self.seed_generator
        )
        zoom = keras.random.uniform((batch, 2), 1.0 - self.zoom, 1.0, seed=self.seed_generator)
        return flip, shift, zoom

    @staticmethod
    def transforms(flip, shift, zoom, height, width):
        """(B, 8) projective transforms (output pixel -> input pixel) for `affine_transform`.

        Zoom about the centre, then undo the shift, then mirror x when flipped:
        x_in = s * (zx * x + cx * (1 - zx) - dx) + flip * (W - 1), s = 1 - 2 * flip.
        """
        sign = 1.0 - 2.0 * flip  # (B, 1)
        centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
        zoom_y, zoom_x = zoom[:, 0:1], zoom[:, 1:2]
        offset_y = centre_y * (1.0 - zoom_y) - shift[:, 0:1] * height
        offset_x = centre_x * (1.0 - zoom_x) - shift[:, 1:2] * width
        zeros = ops.zeros_like(flip)
        return ops.concatenate(
            [
                sign * zoom_x,
                zeros,
                sign * offset_x + flip * (width - 1),
                zeros,
                zoom_y,
                offset_y,
                zeros,
                zeros,
            ],
            axis=1,
        )

    def call(self, images, training=True):
        if not training:
            return images
        height, width = images.shape[1], images.shape[2]
        flip, shift, zoom = self.draw(ops.shape(images)[0])
        return keras.ops.image.affine_transform(
            images,
            self.transforms(flip, shift, zoom, height, width),
            interpolation="bilinear",
            fill_mode="reflect",
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(translate=self.translate, zoom=self.zoom, seed=self.seed)
        return config


GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # Keras' (and tf.image's) RGB -> luminance


@keras.saving.register_keras_serializable(package="simclr_lab")
class RandomGreyscale(keras.layers.Layer):
    """Keras' RandomGrayscale(factor=rate) as one per-image 3x3 colour matrix.

    Each image is turned grey (its luminance in all three channels, Keras' weights) with
    probability `rate`: pixel (1, 3) @ G with G the identity or the grey matrix, one matrix
    product instead of a conversion and a select. Input: float (B, H, W, 3). Identity at
    inference.
    """

    def __init__(self, rate=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_number("rate", rate, 0, 1)
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = ops.shape(images)[0]
        grey = ops.cast(
            keras.random.uniform((batch, 1, 1), seed=self.seed_generator) < self.rate,
            images.dtype,
        )  # (B, 1, 1)
        to_grey = ops.tile(ops.convert_to_tensor(GREY_WEIGHTS, images.dtype)[:, None], (1, 3))
        matrix = grey * to_grey + (1.0 - grey) * ops.eye(3, dtype=images.dtype)  # (B, 3, 3)
        return ops.einsum("bhwc,bcd->bhwd", images, matrix)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="simclr_lab")
class RandomApply(keras.layers.Layer):
    """Apply `layer` to each image with probability `rate`, else pass it through."""

    def __init__(self, layer, rate=0.8, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_number("rate", rate, 0, 1)
        self.layer, self.rate, self.seed = layer, rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = ops.shape(images)[0]
        chosen = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < self.rate
        return ops.where(chosen, self.layer(images, training=True), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            layer=keras.saving.serialize_keras_object(self.layer), rate=self.rate, seed=self.seed
        )
        return config

    @classmethod
    def from_config(cls, config):
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


def zoom_factor(min_area: float) -> float:
    """z = 1 - sqrt(min_area): the largest zoom-in, and twice the largest translation."""
    return 1.0 - math.sqrt(min_area)


def get_augmenter(
    min_area: float,
    brightness: float,
    jitter: float,
    recipe: str = "reference",
    seed=None,
    grayscale: float | None = None,
) -> keras.Sequential:
    """The augmenter for uint8 images (B, H, W, 3) -> float32 in [0, 1], random when training.

    "reference" (the Keras example's): rescale, horizontal flip, translate by up to z/2, zoom
    in by up to z with z = 1 - sqrt(min_area) (the three in one resampling:
    RandomFlipTranslateZoom), then RandomColorAffine(brightness, jitter), then greyscale with
    probability `grayscale` (None: 0).
    "paper" (SimCLR, Chen et al. 2020): rescale, flip, the same crop-and-zoom, then colour
    jitter of strength s = `brightness` (0.8s brightness, contrast and saturation, and a hue
    shift of up to `jitter` * s of the colour circle: the paper's 0.2s at jitter 0.2) applied
    with probability 0.8, then greyscale with probability `grayscale` (None: the paper's 0.2).
    """
    _check_number("min_area", min_area, 0, 1, low_open=True)  # brightness, jitter: the layers'
    if grayscale is None:
        grayscale = 0.2 if recipe == "paper" else 0.0
    _check_number("grayscale", grayscale, 0, 1)

    def layer_seed(offset: int):  # one seed per random layer, drawn from `seed`
        return None if seed is None else seed + offset

    z = zoom_factor(min_area)
    geometry = [
        keras.layers.Rescaling(1 / 255),
        RandomFlipTranslateZoom(translate=z / 2, zoom=z, seed=layer_seed(0)),
    ]
    if recipe == "reference":
        colour = [RandomColorAffine(brightness, jitter, seed=layer_seed(3))]
    elif recipe == "paper":
        strength = min(brightness, 1.0)  # the paper's colour strength s
        jitter_layer = keras.layers.RandomColorJitter(
            value_range=(0, 1),
            brightness_factor=0.8 * strength,
            contrast_factor=0.8 * strength,
            saturation_factor=(0.5 - 0.4 * strength, 0.5 + 0.4 * strength),  # 0.5: unchanged
            hue_factor=min(2 * jitter * strength, 1.0),  # Keras shifts by up to factor / 2
            seed=layer_seed(3),
        )
        colour = [RandomApply(jitter_layer, rate=0.8, seed=layer_seed(4))]
    else:
        raise ValueError(f"Unknown recipe={recipe!r}; allowed: {', '.join(map(repr, RECIPES))}.")
    if grayscale > 0:
        colour.append(RandomGreyscale(grayscale, seed=layer_seed(5)))
    return keras.Sequential(geometry + colour, name=f"{recipe}_augmenter")
