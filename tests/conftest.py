import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
import gzip  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
from types import SimpleNamespace  # noqa: E402

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


@pytest.fixture(scope="session")
def smoke_comparison(tmp_path_factory):
    """One `simclr-lab compare --preset smoke --quiet`, trained once for every test that reads
    what a comparison writes: its folder (`out`), its cache, what it printed and its metrics.
    Tests read it and copy what they change."""
    from simclr_lab.faces.cli import main

    root = tmp_path_factory.mktemp("smoke-comparison")
    out, cache = root / "run", root / "cache"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(
            [
                "compare",
                "--preset",
                "smoke",
                "--out",
                str(out),
                "--cache-dir",
                str(cache),
                "--quiet",
            ]
        )
    assert status == 0, printed.getvalue()[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    return SimpleNamespace(out=out, cache=cache, printed=printed.getvalue(), metrics=metrics)


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
