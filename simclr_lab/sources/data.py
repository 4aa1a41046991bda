"""The image sources and the unlabelled / labelled / test splits drawn from them.

`load_splits(config.data)` is the one call: it returns a `Splits` of uint8 arrays (decoded
once, kept in memory; a folder of one's own images is memory-mapped, `simclr_lab.sources.folder`);
`simclr_lab.sources.batching` turns them into the per-step streams.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import weakref
from pathlib import Path

import numpy as np

from simclr_lab.config import SYNTHETIC_SIZES, DataConfig
from simclr_lab.runs.cache import atomic_write_text
from simclr_lab.sources import composite, synthetic
from simclr_lab.sources.folder import DEMO_MARKER
from simclr_lab.sources.folder_splits import folder_splits
from simclr_lab.sources.splits import Splits, balanced_subset

DATA_ENV_VAR = "SIMCLR_LAB_DATA"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt")
FASHION_MNIST_CLASSES += ("Sneaker", "Bag", "Ankle boot")
STL10_CLASSES = tuple("airplane bird car cat deer dog horse monkey ship truck".split())
VALIDATION_FRACTION, VALIDATION_SEED = 1 / 6, 7  # 10,000 of Fashion-MNIST's 60,000 training images


class DataNotFoundError(RuntimeError):
    """A data source is not on this machine and cannot be downloaded."""


def load_splits(config: DataConfig, cache_dir=None) -> Splits:
    """The unlabelled, labelled (class-balanced, seeded) and test splits for `config.source`.

    cache_dir: where a folder's decoded images are kept (default: the run cache's).
    """
    if config.source == "folder":
        return folder_splits(config, cache_dir)
    if config.source == "synthetic":
        return _synthetic_splits(config)
    shared = None  # the rendered composite, when other splits already hold it
    if config.source in ("fashion_mnist", "fashion_mnist_composite"):
        folder = find_fashion_mnist()
        origin = str(folder or "Keras' download")
        if config.source == "fashion_mnist":
            (train_x, train_y), (test_x, test_y) = load_fashion_mnist(folder)
            train_x, test_x = to_rgb(train_x, config.image_size), to_rgb(test_x, config.image_size)
        else:
            shared = _held_render(folder)
            (train_x, train_y), (test_x, test_y) = shared or rendered_composite(folder)
            if config.image_size != composite.IMAGE_SIZE:
                train_x, test_x = (resize(x, config.image_size) for x in (train_x, test_x))
        if config.evaluate_on == "validation":
            (train_x, train_y), (test_x, test_y) = hold_out_validation(train_x, train_y)
        unlabelled, pool_x, pool_y = train_x, train_x, train_y
        unlabelled_labels = train_y.astype("int32")
        names = FASHION_MNIST_CLASSES
    else:
        unlabelled, (pool_x, pool_y), (test_x, test_y) = load_stl10()
        if config.image_size != unlabelled.shape[1]:
            unlabelled, pool_x, test_x = (
                resize(a, config.image_size) for a in (unlabelled, pool_x, test_x)
            )
        unlabelled_labels, origin = None, "tensorflow-datasets"
        names = STL10_CLASSES
    labelled = balanced_subset(pool_y, config.labels_per_class, len(names), config.seed)
    # a view of images other splits hold costs nothing; a subset of ones made here is copied
    copy_subsets = shared is None or unlabelled is not shared[0][0]
    return Splits(
        source=config.source,
        unlabelled=_take(unlabelled, config.num_unlabelled, copy_subsets),
        labelled_images=pool_x[labelled],
        labelled_labels=pool_y[labelled].astype("int32"),
        test_images=_take(test_x, config.num_test, copy_subsets),
        test_labels=_take(test_y, config.num_test).astype("int32"),
        class_names=names,
        unlabelled_labels=(
            None if unlabelled_labels is None else _take(unlabelled_labels, config.num_unlabelled)
        ),
        origin=origin,
    )


_RENDERED: dict = {}  # folder -> (weak references to the two image arrays, the labels)


def _held_render(folder: Path | None):
    """The composite rendered from `folder` if some split still holds it, else None."""
    held = _RENDERED.get(folder)
    if held is None:
        return None
    (train_ref, test_ref), (train_y, test_y) = held
    train_x, test_x = train_ref(), test_ref()
    if train_x is None or test_x is None:
        return None
    return (train_x, train_y), (test_x, test_y)


def rendered_composite(folder: Path | None):
    """((train_x, train_y), (test_x, test_y)): Fashion-MNIST from `folder` as the composite,
    images (60000 | 10000, 32, 32, 3) uint8, read-only. Rendered once and shared for as long
    as some split still holds them (a second `load_splits` for a shorter run or another label
    draw shares them instead of rendering another copy); once none does, they are freed, so
    a kernel that keeps only a 10,000-image subset does not hold all 60,000."""
    held = _held_render(folder)
    if held is not None:
        return held
    (train_x, train_y), (test_x, test_y) = load_fashion_mnist(folder)
    train_x = composite.render_composite(train_x, composite.TRAIN_SEED)
    test_x = composite.render_composite(test_x, composite.TEST_SEED)
    for array in (train_x, train_y, test_x, test_y):
        array.flags.writeable = False
    _RENDERED[folder] = ((weakref.ref(train_x), weakref.ref(test_x)), (train_y, test_y))
    return (train_x, train_y), (test_x, test_y)


def hold_out_validation(images: np.ndarray, labels: np.ndarray):
    """((rest_x, rest_y), (validation_x, validation_y)): a fixed random sixth of the training
    split set aside, for choosing settings without looking at the test split."""
    size = round(len(labels) * VALIDATION_FRACTION)
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(labels))
    held, rest = np.sort(order[:size]), np.sort(order[size:])
    return (images[rest], labels[rest]), (images[held], labels[held])


def _take(array: np.ndarray, count: int | None, copy: bool = False) -> np.ndarray:
    """The first `count` items (all for None): a view, or with `copy` an array of their own
    when they are fewer than all (read-only if `array` is)."""
    if count is None or count == len(array):
        return array
    if count > len(array):
        raise ValueError(f"Asked for {count:,} images but the split has {len(array):,}.")
    if not copy:
        return array[:count]
    part = array[:count].copy()
    part.flags.writeable = array.flags.writeable
    return part


def _synthetic_splits(config: DataConfig) -> Splits:
    per_class = config.labels_per_class or SYNTHETIC_SIZES["labelled_pool"] // 10
    size, seed = config.image_size, config.seed
    unlabelled, unlabelled_labels = synthetic.make_shapes(
        config.num_unlabelled or SYNTHETIC_SIZES["unlabelled"], size, seed=seed * 3 + 1
    )
    pool_x, pool_y = synthetic.make_shapes(per_class * 10, size, seed=seed * 3 + 2)
    test_x, test_y = synthetic.make_shapes(
        config.num_test or SYNTHETIC_SIZES["test"], size, seed=seed * 3 + 3
    )
    return Splits(
        "synthetic",
        unlabelled,
        pool_x,
        pool_y,
        test_x,
        test_y,
        synthetic.CLASS_NAMES,
        unlabelled_labels,
    )


# ---------------------------------------------------------------- Fashion-MNIST (IDX files)


def fashion_mnist_dirs() -> list[Path]:
    """Where the gzip IDX files are looked for, in order: only `$SIMCLR_LAB_DATA` when it is
    set (a named folder that is unusable is an error, never passed over), else Keras' cache
    folder and Debian's package."""
    if os.environ.get(DATA_ENV_VAR):
        return [Path(os.environ[DATA_ENV_VAR])]
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return [keras_home / "datasets" / "fashion-mnist", DEBIAN_FASHION_MNIST]


def find_fashion_mnist() -> Path | None:
    """The first folder that holds all four Fashion-MNIST files with sound headers, or None.

    Raises DataNotFoundError when `$SIMCLR_LAB_DATA` names a folder that lacks a file, and
    ValueError (naming the file) when a found file's header is not Fashion-MNIST's.
    """
    for folder in fashion_mnist_dirs():
        missing = [n for n in FASHION_MNIST_FILES.values() if not (folder / n).is_file()]
        if not missing:
            check_fashion_mnist_headers(folder)
            return folder
        if os.environ.get(DATA_ENV_VAR):
            where = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
            raise DataNotFoundError(
                f"${DATA_ENV_VAR}={str(folder)!r} {where}; the folder it names must hold "
                f"Fashion-MNIST's four gzip IDX files ({', '.join(FASHION_MNIST_FILES.values())})."
                " Unset it to use Keras' download or Debian's dataset-fashion-mnist."
            )
    return None


def check_fashion_mnist_headers(folder: Path) -> None:
    """Refuse, naming the file, IDX headers of the wrong shape or disagreeing counts."""
    shapes = {key: idx_shape(folder / name) for key, name in FASHION_MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = shapes[f"{split}_images"], shapes[f"{split}_labels"]
        image_file = folder / FASHION_MNIST_FILES[f"{split}_images"]
        label_file = folder / FASHION_MNIST_FILES[f"{split}_labels"]
        if len(images) != 3 or images[1:] != (28, 28):
            raise ValueError(f"{image_file} holds shape {images}; expected (N, 28, 28) images.")
        if len(labels) != 1:
            raise ValueError(f"{label_file} holds shape {labels}; expected (N,) labels.")
        if images[0] != labels[0]:
            raise ValueError(
                f"{image_file} holds {images[0]:,} images but {label_file} {labels[0]:,} "
                "labels; they must be equal."
            )


def load_fashion_mnist(folder: Path | None = None):
    """((train_x, train_y), (test_x, test_y)): 28x28 uint8 images, uint8 labels 0-9, from
    `folder` (default: `find_fashion_mnist()`), else Keras' download."""
    folder = folder or find_fashion_mnist()
    if folder is None:
        _require_network("fashion_mnist", "storage.googleapis.com")
        import keras

        return keras.datasets.fashion_mnist.load_data()
    read = {key: read_idx(folder / name) for key, name in FASHION_MNIST_FILES.items()}
    for split in ("train", "test"):
        labels = read[f"{split}_labels"]
        if len(labels) and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise ValueError(
                f"{folder / FASHION_MNIST_FILES[f'{split}_labels']} holds label "
                f"{labels.max()}; Fashion-MNIST labels are 0 to {len(FASHION_MNIST_CLASSES) - 1}."
            )
    return (read["train_images"], read["train_labels"]), (read["test_images"], read["test_labels"])


def _idx_header(path: Path, raw: bytes) -> tuple[int, tuple[int, ...]]:
    """(header length, shape) of an IDX file of uint8 data, checked."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of uint8 data (header {raw[:4]!r}).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path} has a truncated header: {len(raw)} bytes where its {ndim} dimensions "
            f"need {header}."
        )
    return header, struct.unpack(f">{ndim}I", raw[4:header])


def _read_gzip(path: Path, size: int = -1) -> bytes:
    try:
        with gzip.open(path, "rb") as file:
            return file.read(size)
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable gzip IDX file ({error}).") from error


def idx_shape(path: Path) -> tuple[int, ...]:
    """The array shape a gzip IDX file's header declares (reads only the header)."""
    return _idx_header(path, _read_gzip(path, 4 + 4 * 255))[1]


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-compressed IDX file (uint8 data) into an array, checking its header."""
    raw = _read_gzip(path)
    header, shape = _idx_header(path, raw)
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: its header promises {expected:,} bytes of "
            f"shape {shape}, the file holds {len(raw) - header:,}."
        )
    return np.frombuffer(raw, dtype="uint8", offset=header).reshape(shape)


def to_rgb(images: np.ndarray, image_size: int = 32) -> np.ndarray:
    """28x28 grey (N, 28, 28) -> (N, size, size, 3): zero-padded to 32, resized if larger."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    rgb = np.repeat(padded[..., None], 3, axis=-1)
    return rgb if image_size == 32 else resize(rgb, image_size)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 images (N, H, W, 3) to (N, size, size, 3), in chunks."""
    import keras

    chunks = []
    for start in range(0, len(images), 2048):
        chunk = keras.ops.image.resize(
            images[start : start + 2048].astype("float32"), (size, size)
        )
        chunks.append(np.clip(keras.ops.convert_to_numpy(chunk) + 0.5, 0, 255).astype("uint8"))
    return np.concatenate(chunks) if chunks else images


# ---------------------------------------------------------------- STL-10 (tensorflow-datasets)


def load_stl10():
    """(unlabelled, (train_x, train_y), (test_x, test_y)) of STL-10 via tensorflow-datasets."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataNotFoundError(
            "source 'stl10' needs tensorflow-datasets (and TensorFlow): "
            "pip install tensorflow-cpu tensorflow-datasets"
        ) from error
    builder = tfds.builder("stl10")
    if not builder.is_prepared():
        _require_network("stl10", "cs.stanford.edu")
    arrays = []
    for split in ("unlabelled", "train", "test"):
        dataset = tfds.load("stl10", split=split, as_supervised=True).batch(1024)
        batches = list(tfds.as_numpy(dataset))
        images = np.concatenate([x for x, _ in batches])
        labels = np.concatenate([y for _, y in batches]).astype("int32")
        arrays.append((images, labels))
    (unlabelled, _), train, test = arrays
    return unlabelled, train, test


def _require_network(source: str, host: str, timeout: float = 3.0) -> None:
    """Fail fast, with the ways to get the data, when `host` cannot be reached."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        ways = {
            "fashion_mnist": (
                "install Debian's package (apt-get install dataset-fashion-mnist), or put the "
                f"four gzip IDX files in a folder named by ${DATA_ENV_VAR}, or run once with "
                "internet access so Keras downloads them; looked in: "
                + ", ".join(map(str, fashion_mnist_dirs()))
            ),
            "stl10": (
                "run once with internet access so tensorflow-datasets downloads it (~2.6 GB), "
                "or copy a prepared tensorflow_datasets folder to ~/tensorflow_datasets"
            ),
        }[source]
        raise DataNotFoundError(
            f"source {source!r} is not on this machine and {host} cannot be reached "
            f"({error}). To get it: {ways}."
        ) from error


DEMO_FORMAT = 1  # the demo's files; not the decoding's CACHE_FORMAT: a demo stays valid


def write_demo_folder(path, per_class: int = 150, source: str = "fashion_mnist_composite"):
    """A folder of PNG and JPEG files, one subfolder per class, for trying the folder source:
    `per_class` images of each class of the Fashion-MNIST composite (or of the synthetic
    shapes: `source="synthetic"`, nothing to download), every second one a JPEG.

    A folder that already holds this demo is left as it is; any other existing, non-empty
    folder is refused, never written into. Returns the folder's Path.
    """
    import tensorflow as tf

    root = Path(path).expanduser()
    recipe = {"per_class": per_class, "source": source, "format": DEMO_FORMAT}
    marker = root / DEMO_MARKER
    if marker.is_file() and json.loads(marker.read_text()) == recipe:
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{str(root)!r} exists and is not an empty folder; the demo is written only into "
            "a new or empty one."
        )
    if source == "synthetic":
        images, labels = synthetic.make_shapes(per_class * 10 * 2, 32, seed=5)
        names = synthetic.CLASS_NAMES
    elif source == "fashion_mnist_composite":
        (items, labels), _ = load_fashion_mnist()
        images = composite.render_composite(items[: per_class * 10 * 2], composite.TRAIN_SEED)
        labels, names = labels[: per_class * 10 * 2], FASHION_MNIST_CLASSES
    else:
        raise ValueError(
            f"Unknown source={source!r}; allowed: 'fashion_mnist_composite', 'synthetic'."
        )
    chosen = balanced_subset(labels, per_class, len(names), seed=0)
    for count, index in enumerate(chosen):
        folder = root / names[labels[index]].replace("/", "_").replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        image = images[index]
        if count % 2:
            (folder / f"{index:05d}.jpg").write_bytes(tf.io.encode_jpeg(image, quality=95).numpy())
        else:
            (folder / f"{index:05d}.png").write_bytes(tf.io.encode_png(image).numpy())
    atomic_write_text(marker, json.dumps(recipe))
    return root
