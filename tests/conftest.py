import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
import gzip  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
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
def cpu_splits():
    """The cpu preset's data (60,000 rendered composite images), rendered once: while it is
    held, every split of that composite (lesson 7's shorter runs too) is served from it."""
    return load_splits(get_preset("cpu").data)


def _smoke_compare(out, cache) -> list[str]:
    """The arguments of `simclr-lab compare --preset smoke --quiet` into `out`, with `cache`."""
    where = ["--out", str(out), "--cache-dir", str(cache)]
    return ["compare", "--preset", "smoke", *where, "--quiet"]


@pytest.fixture(scope="session")
def smoke_comparison(tmp_path_factory):
    """One `simclr-lab compare --preset smoke --quiet`, trained once for every test that reads
    what a comparison writes: its folder (`out`), its cache, what it printed, its metrics and
    its `arguments(out, cache)`, to run it again.
    Tests read it and copy what they change."""
    from simclr_lab.faces.cli import main

    root = tmp_path_factory.mktemp("smoke-comparison")
    out, cache = root / "run", root / "cache"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(_smoke_compare(out, cache))
    assert status == 0, printed.getvalue()[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    return SimpleNamespace(
        out=out,
        cache=cache,
        printed=printed.getvalue(),
        metrics=metrics,
        arguments=_smoke_compare,
    )


# A comparison on JAX where every import of TensorFlow fails, as on a machine without it, and
# is counted: so a path that would import TensorFlow where it is installed fails here too.
JAX_COMPARISON = """
import importlib.abc, importlib.machinery, sys
asked = []
class Refused(importlib.abc.Loader):
    def create_module(self, spec):
        asked.append(spec.name)
        raise ModuleNotFoundError(f"No module named {spec.name!r}")
    def exec_module(self, module):
        pass
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            return importlib.machinery.ModuleSpec(name, Refused())
        return None
sys.meta_path.insert(0, NoTensorFlow())
from simclr_lab.faces.cli import main
status = main(["compare", *sys.argv[1:]])
print("asked for tensorflow:", asked, "status:", status)
"""

# Runs one command and prints, after what it printed, its peak resident memory.
PEAK = """
import resource, subprocess, sys
ran = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(ran.stdout)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, of that one run
sys.exit(ran.returncode and ran.stderr[-3000:])
"""


# One epoch a phase, so that 2 devices still agree with one to within rounding.
ONE_EPOCH_COMPARISON = ["--preset", "smoke", "--set", "pretrain.epochs=1", "--set"]
ONE_EPOCH_COMPARISON += ["supervised.epochs=1", "--quiet"]
# Each run: (KERAS_BACKEND, simulated CPU devices, the command before its arguments).
ONE_EPOCH_RUNS = {
    "tensorflow": ("tensorflow", 1, ["-m", "simclr_lab", "compare"]),
    "jax": ("jax", 1, ["-c", JAX_COMPARISON]),
    "jax, 2 devices": ("jax", 2, ["-m", "simclr_lab", "compare", "--devices", "all"]),
}


def _peak_of(name: str, folder) -> subprocess.Popen:
    """One of ONE_EPOCH_RUNS in a process of its own, under PEAK."""
    backend, devices, command = ONE_EPOCH_RUNS[name]
    env = {key: value for key, value in os.environ.items() if not key.startswith("KERAS_DIS")}
    env.update(
        KERAS_BACKEND=backend, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"
    )
    where = ["--out", f"{folder}/out", "--cache-dir", f"{folder}/cache"]
    return subprocess.Popen(
        [sys.executable, "-c", PEAK, sys.executable, *command, *ONE_EPOCH_COMPARISON, *where],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="session")
def one_epoch_comparisons(tmp_path_factory):
    """The one-epoch smoke comparison on TensorFlow, on JAX and on JAX over 2 simulated
    devices, side by side (ONE_EPOCH_RUNS): per run, its folder (`out/metrics.json`, ...),
    what it printed and its peak memory in KiB. JAX's one-device run refuses and counts every
    import of TensorFlow."""
    root = tmp_path_factory.mktemp("one-epoch")
    running = {name: _peak_of(name, root / f"run{i}") for i, name in enumerate(ONE_EPOCH_RUNS)}
    runs = {}
    for i, (name, process) in enumerate(running.items()):
        printed, errors = process.communicate(timeout=900)
        assert process.returncode == 0, f"{name}: {errors[-3000:]}"
        *lines, peak = printed.strip().splitlines()
        runs[name] = SimpleNamespace(
            folder=root / f"run{i}", printed="\n".join(lines), peak=int(peak)
        )
    return runs


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
