import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gzip  # noqa: E402
import struct  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from simclr_lab.runs.presets import get_preset  # noqa: E402
from simclr_lab.sources import data  # noqa: E402
from simclr_lab.sources.data import load_splits  # noqa: E402


@pytest.fixture(scope="session")
def smoke_config():
    return get_preset("smoke")


@pytest.fixture(scope="session")
def smoke_splits(smoke_config):
    return load_splits(smoke_config.data)


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype("uint8").tobytes())


@pytest.fixture
def write_idx():
    """The writer of gzip IDX files, for tests that build broken ones."""
    return _write_idx


@pytest.fixture
def fake_fashion_mnist(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 255, (60, 28, 28)),
        "train_labels": np.arange(60) % 10,
        "test_images": rng.integers(0, 255, (20, 28, 28)),
        "test_labels": np.arange(20) % 10,
    }
    for key, name in data.FASHION_MNIST_FILES.items():
        _write_idx(tmp_path / name, arrays[key])
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    return tmp_path, arrays
