"""simclr-lab: contrastive pretraining (SimCLR) and semi-supervised classification, as lessons.

The top level is the recipe, in the order a learner reads it (each module imports only the
others, the settings, Keras and NumPy):

- `config`: the settings, as frozen dataclasses, each value checked when it is set.
- `augment`: the random views (crop, flip, colour) as Keras layers.
- `encoder`: the convolutional encoder, projection head and linear probe.
- `loss`: InfoNCE and NT-Xent on projection arrays.
- `model`: `ContrastiveModel` and its training step, with an online linear probe.
- `evaluate`: kNN and the linear probe on frozen features: numbers only.
- `diagnostics`: what a collapse looks like (feature spread, alignment, uniformity).

The machinery lives beneath it (README: "How the library is built"):

- `sources`: images from Fashion-MNIST, STL-10, code or a folder, split and batched.
- `runs`: presets, devices, caching, shipped runs and the training phases.
- `studies`: the headless comparison, label sweep, knobs' study and benchmark.
- `figures`: the plots.
- `faces`: the `simclr-lab` command, the widgets and the live dashboard.
"""

import os
import sys
from pathlib import Path

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


class BackendError(ImportError):
    """$KERAS_BACKEND names a backend that is unknown or not installed here."""


def _check_backend() -> None:
    """Refuse, in one line, a $KERAS_BACKEND that Keras could not import."""
    import importlib.util

    if "keras" in sys.modules:
        return
    name = os.environ.get("KERAS_BACKEND")
    usable = [b for b, module in BACKEND_MODULES.items() if importlib.util.find_spec(module)]
    if not name and "tensorflow" not in usable:  # Keras' default backend, not installed
        raise BackendError(
            "simclr-lab needs a Keras backend and TensorFlow, Keras' default, is not "
            "installed: pip install 'simclr-lab[cpu]' (TensorFlow for CPUs), "
            "'simclr-lab[gpu]' (TensorFlow with CUDA), or install JAX and set KERAS_BACKEND=jax."
        )
    if name and name not in usable:
        problem = "is not installed" if name in BACKEND_MODULES else "is not a Keras backend"
        raise BackendError(
            f"KERAS_BACKEND={name!r} {problem}; backends that work here: {', '.join(usable)}."
        )


def _launched_as_cli() -> bool:
    """Whether this process is the `simclr-lab` command (or `python -m simclr_lab`)."""
    argv = getattr(sys, "orig_argv", sys.argv)
    return any(Path(a).name == "simclr-lab" for a in argv[:2]) or "simclr_lab" in argv[2:3]


def _leave_tensorflow_alone() -> None:
    """Under a backend other than TensorFlow, keep Keras from importing TensorFlow just
    because it is installed (seeding and serialisation ask whether it is, which imports it:
    0.8 GB that a JAX run never uses). A source that decodes files with TensorFlow (a folder,
    STL-10) still imports it itself."""
    import keras
    from keras.src.utils import module_utils  # where Keras keeps its lazy TensorFlow

    if keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules:
        module_utils.tensorflow._available = False


def _import_keras_quietly() -> None:
    """Import Keras (and so TensorFlow) with file descriptor 2 silenced: TensorFlow's C++
    start-up lines (absl, oneDNN) bypass Python's logging and would fill every lesson."""
    if "keras" in sys.modules or os.environ.get("SIMCLR_LAB_VERBOSE_IMPORT"):
        if "keras" in sys.modules:
            _leave_tensorflow_alone()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 to silence
        import keras  # noqa: F401

        _leave_tensorflow_alone()
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    _leave_tensorflow_alone()


def _fewer_malloc_arenas() -> None:
    """Under JAX, let glibc keep 2 memory arenas instead of up to 8 a core: XLA's many
    threads each grew one, and a JAX comparison peaked 20% above TensorFlow's for it (1.21
    against 1.02 GiB for the smoke phases; 1.03 with 2 arenas). Before any thread starts."""
    if os.environ.get("KERAS_BACKEND") != "jax":
        return
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, 2)  # M_ARENA_MAX


def _system_allocator_in_notebooks() -> None:
    """In a notebook kernel on TensorFlow, let its oneDNN kernels allocate from the system
    instead of a pool that keeps the largest step's buffers for the kernel's whole life, and
    fix glibc's thresholds, whose automatic ones returned and refetched the buffers each step.
    Measured on one core of the 2-core Intel Xeon in float32, the lessons as Binder runs them:
    lesson 4 peaked at 1.38 GiB instead of 1.48 in the same time, and lesson 3b's 60 steps
    took 57 s as with the pool (99 s with the system allocator alone). A command or a script
    keeps the pool. Before TensorFlow is imported."""
    if "ipykernel" not in sys.modules:
        return
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")  # read only by TensorFlow
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: larger blocks come from and go back to
        libc.mallopt(-1, 64 << 20)  # the system; M_TRIM_THRESHOLD: keep up to this much free


def _glibc():
    """The C library on Linux with glibc, else None (musl has no arenas or thresholds)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_fewer_malloc_arenas()
_system_allocator_in_notebooks()
try:
    _check_backend()
except BackendError as _error:
    if not _launched_as_cli():
        raise
    print(f"simclr-lab: error: {_error}", file=sys.stderr)
    sys.exit(2)
if not _launched_as_cli():  # the command imports Keras once its arguments are read
    _import_keras_quietly()

from simclr_lab.config import Config  # noqa: E402
from simclr_lab.runs.presets import PRESETS, get_preset  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PRESETS", "Config", "get_preset", "__version__"]
