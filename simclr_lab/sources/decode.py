"""Image files to pixels: one file's bytes decoded to a (size, size, 3) uint8 RGB square.

Every format TensorFlow decodes (JPEG, PNG, GIF, BMP, WebP). Transparent parts become white:
PNG and WebP alpha, a palette PNG's tRNS, and a GIF's transparent colour (GIFs are read with
Pillow, which TensorFlow's GIF decoder does not tell). A JPEG's EXIF orientation is applied,
so a photo taken sideways is stored upright. A GIF gives its first frame. The centre square
is taken and resized with antialiasing.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import numpy as np

# EXIF orientation -> the turn that makes the image upright, on (H, W, C) arrays
_UPRIGHT = {
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a.transpose(1, 0, 2), 2),
    8: lambda a: np.rot90(a, 1),
}


class DecodeError(ValueError):
    """The bytes are not an image that can be decoded; the message says why."""


def exif_orientation(contents: bytes) -> int:
    """A JPEG's EXIF orientation tag (1 to 8; 1: upright, also when there is none)."""
    if not contents.startswith(b"\xff\xd8"):
        return 1
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(contents)) as image:
            value = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 1
    return value if value in _UPRIGHT else 1


def _gif_rgba(contents: bytes) -> np.ndarray:
    """A GIF's first frame as (H, W, 4) uint8 RGBA: its transparent colour has alpha 0."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(contents)) as image:
            image.seek(0)
            return np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DecodeError(f"not a readable GIF ({error})") from error


def decoder(image_size: int):
    """A function: encoded bytes -> (image_size, image_size, 3) uint8 RGB (a NumPy array).
    Raises DecodeError for bytes that are no image."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            "source 'folder' decodes images with TensorFlow: pip install tensorflow-cpu"
        ) from error

    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.uint8)])
    def square(image):  # (H, W, C) uint8, C in 1..4 -> (size, size, 3) uint8
        image = tf.cast(image, "float32")
        channels = tf.shape(image)[-1]
        colour = tf.cond(
            channels >= 3, lambda: image[..., :3], lambda: tf.repeat(image[..., :1], 3, axis=-1)
        )
        has_alpha = tf.logical_or(tf.equal(channels, 2), tf.equal(channels, 4))
        alpha = tf.cond(
            has_alpha, lambda: image[..., -1:] / 255.0, lambda: tf.ones_like(image[..., :1])
        )
        image = colour * alpha + 255.0 * (1.0 - alpha)  # transparent parts become white
        # The centre square, as keras.layers.Resizing(crop_to_aspect_ratio=True) takes it (in
        # TensorFlow itself, whatever Keras' backend, so that it runs in this tf.function).
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top : top + side, left : left + side]
        resized = tf.image.resize(square, (image_size, image_size), "bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), "uint8")

    def decode(contents: bytes) -> np.ndarray:
        if contents.startswith((b"GIF87a", b"GIF89a")):
            pixels = _gif_rgba(contents)
        else:
            try:
                pixels = tf.io.decode_image(contents, expand_animations=False)
            except (tf.errors.OpError, ValueError) as error:
                raise DecodeError(decode_error(contents, error)) from error
        result = square(pixels).numpy()
        upright = _UPRIGHT.get(exif_orientation(contents))
        return np.ascontiguousarray(upright(result)) if upright else result

    return decode


def decode_error(contents: bytes, error: Exception) -> str:
    """TensorFlow's reason, in one line, for a file it cannot decode."""
    import tensorflow as tf

    try:
        tf.io.decode_image(contents, expand_animations=False)
    except tf.errors.OpError as eager:
        text = eager.message.split("}}")[-1].split("[Op:")[0].strip()
        return text or type(error).__name__
    return "not decodable as an image"


def read_image_file(path: Path) -> bytes | str:
    """The file's bytes, or in one line why it cannot be read: a pipe, socket or device is
    never opened (a pipe would wait forever); a broken link or an unreadable file is named."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return "not a regular file (a pipe, socket or device)"
        return path.read_bytes()
    except OSError as error:
        what = "a broken link or a link loop" if path.is_symlink() else "cannot be read"
        return f"{what} ({error.strerror or error})"
