"""simclr-lab: contrastive pretraining (SimCLR) and semi-supervised classification, as lessons.

The modules follow the lessons: `augment`, `encoder`, `loss`, `model` (pretraining with an
online probe), `data` and `batching`, `train` (load-or-train phases), `evaluate`, `plots`,
`widgets`; `config` holds the hyperparameters and presets.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up log out of lessons

from simclr_lab.config import PRESETS, Config, get_preset  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PRESETS", "Config", "get_preset", "__version__"]
