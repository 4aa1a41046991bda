"""The encoder, the projection head, the linear probe and the supervised classifier."""

from __future__ import annotations

import keras

from simclr_lab.config import MIN_IMAGE_SIZE

LAYER_PRECISIONS = ("float32", "mixed_bfloat16")  # Keras dtype policies


def _layer_dtype(precision: str) -> str:
    """`precision` as a Keras dtype policy; "auto" is decided for the machine before a
    model is built (`runs.devices.resolve_precision`)."""
    if precision not in LAYER_PRECISIONS:
        hint = " (resolve it first: runs.devices.resolve_precision)" if precision == "auto" else ""
        allowed = ", ".join(map(repr, LAYER_PRECISIONS))
        raise ValueError(f"Unknown precision={precision!r}{hint}; allowed: {allowed}.")
    return precision


def get_encoder(
    width: int = 128, image_size: int | None = None, precision: str = "float32"
) -> keras.Sequential:
    """The reference's encoder: (B, H, W, 3) float -> (B, width) features.

    4 x Conv2D(width, 3x3, stride 2, ReLU, valid), Flatten, Dense(width, ReLU). At 96x96 the
    last feature map is 5x5, at 32x32 it is 1x1; below 31x31 nothing is left.
    precision "mixed_bfloat16": bfloat16 arithmetic, float32 weights (features in bfloat16).
    """
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width={width!r} must be a positive integer.")
    precision = _layer_dtype(precision)
    if image_size is not None and image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size={image_size} is too small: simclr-lab's encoder and sources take "
            f"at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} pixels."
        )
    inputs = [keras.Input((image_size, image_size, 3))] if image_size else []
    return keras.Sequential(
        inputs
        + [
            keras.layers.Conv2D(width, 3, strides=2, activation="relu", dtype=precision)
            for _ in range(4)
        ]
        + [
            keras.layers.Flatten(dtype=precision),
            keras.layers.Dense(width, activation="relu", dtype=precision),
        ],
        name="encoder",
    )


def encoder_layer_costs(image_size: int, width: int = 128) -> list[dict]:
    """Per layer of `get_encoder`: {"layer", "output" (H, W, C), "parameters", "multiply_adds"
    (one forward pass of one image)}, the four convolutions then the Dense layer."""
    rows, size, channels = [], image_size, 3
    for index in range(4):
        size = (size - 3) // 2 + 1  # valid 3x3 convolution, stride 2
        weights = 3 * 3 * channels * width
        rows.append(
            {
                "layer": f"conv {index + 1}",
                "output": (size, size, width),
                "parameters": weights + width,
                "multiply_adds": size * size * weights,
            }
        )
        channels = width
    flat = size * size * width
    rows.append(
        {
            "layer": "dense",
            "output": (width,),
            "parameters": flat * width + width,
            "multiply_adds": flat * width,
        }
    )
    return rows


def encoder_multiply_adds(image_size: int, width: int = 128) -> int:
    """Multiply-adds of one forward pass of `get_encoder` on one image (~108 M at 96x96)."""
    return sum(row["multiply_adds"] for row in encoder_layer_costs(image_size, width))


def get_projection_head(
    width: int = 128,
    batchnorm: bool = False,
    precision: str = "float32",
    output_batchnorm: bool = False,
) -> keras.Sequential:
    """Dense(width, ReLU), Dense(width): (B, width) features -> (B, width) projections.

    The loss acts on the projections, so the encoder's features need not discard what the
    augmentations vary; `batchnorm=True` adds BatchNorm after the hidden layer (SimCLR v1),
    `output_batchnorm=True` after the last one (SimSiam's projector).
    """
    precision = _layer_dtype(precision)
    hidden = [keras.layers.Dense(width, use_bias=not batchnorm, dtype=precision)]
    if batchnorm:
        hidden.append(keras.layers.BatchNormalization(dtype=precision))
    output = [keras.layers.Dense(width, use_bias=not output_batchnorm, dtype=precision)]
    if output_batchnorm:
        output.append(keras.layers.BatchNormalization(dtype=precision))
    return keras.Sequential(
        hidden + [keras.layers.ReLU(dtype=precision)] + output, name="projection_head"
    )


def get_predictor(width: int = 128, precision: str = "float32") -> keras.Sequential:
    """SimSiam's predictor: Dense(width // 4), BatchNorm, ReLU, Dense(width): (B, width) ->
    (B, width), a bottleneck as in the paper (512 for 2048)."""
    precision = _layer_dtype(precision)
    return keras.Sequential(
        [
            keras.layers.Dense(max(width // 4, 1), use_bias=False, dtype=precision),
            keras.layers.BatchNormalization(dtype=precision),
            keras.layers.ReLU(dtype=precision),
            keras.layers.Dense(width, dtype=precision),
        ],
        name="predictor",
    )


def get_linear_probe(num_classes: int = 10) -> keras.layers.Dense:
    """Dense(num_classes) logits on (B, width) features."""
    return keras.layers.Dense(num_classes, name="linear_probe")


def standalone_encoder(encoder: keras.Model, image_size: int) -> keras.Sequential:
    """`encoder` with the preprocessing it expects, from built-in Keras layers only, so that
    `keras.saving.load_model` reads it without simclr-lab: RGB images (B, H, W, 3) in 0..255,
    uint8 or float, of any size -> (B, width) float32 features.

    Images are centre-cropped to a square and resized to `image_size` (antialiased bilinear,
    as `simclr_lab.sources.folder` decodes them), divided by 255 (a Normalization layer: the same
    division as `evaluate.encode`) and encoded by a float32 copy of `encoder`: an encoder
    trained in bfloat16 then runs at full speed on any machine, its features differing from
    the bfloat16 ones by bfloat16's rounding (about 3 significant digits).
    """

    def in_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(encoder, clone_function=in_float32)
    copy.set_weights(encoder.get_weights())
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Resizing(
                image_size, image_size, crop_to_aspect_ratio=True, antialias=True
            ),
            keras.layers.Normalization(mean=0.0, variance=255.0**2),
            copy,
        ],
        name="simclr_encoder",
    )


def get_classifier(
    augmenter: keras.Model, encoder: keras.Model, num_classes: int = 10, name="classifier"
) -> keras.Sequential:
    """augmenter -> encoder -> Dense(num_classes): the baseline and the finetuned model.

    Input: uint8 images (B, H, W, 3); output: logits (B, num_classes).
    """
    return keras.Sequential(
        [augmenter, encoder, keras.layers.Dense(num_classes, name="classifier_head")], name=name
    )
