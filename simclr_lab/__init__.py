"""simclr-lab: contrastive pretraining (SimCLR) and semi-supervised classification, as lessons.

The modules follow the lessons: `augment`, `encoder`, `loss`, `model` (pretraining with an
online probe), `data` and `batching`, `train` (load-or-train phases), `evaluate`, `plots`,
`widgets`, `dashboard`; `config` holds the hyperparameters and presets.
"""

import os
import sys


def _import_keras_quietly() -> None:
    """Import Keras (and so TensorFlow) with file descriptor 2 silenced: TensorFlow's C++
    start-up lines (absl, oneDNN) bypass Python's logging and would fill every lesson."""
    if "keras" in sys.modules or os.environ.get("SIMCLR_LAB_VERBOSE_IMPORT"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 to silence
        import keras  # noqa: F401

        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_keras_quietly()

from simclr_lab.config import PRESETS, Config, get_preset  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PRESETS", "Config", "get_preset", "__version__"]
