import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from simclr_lab.config import get_preset  # noqa: E402
from simclr_lab.data import load_splits  # noqa: E402


@pytest.fixture(scope="session")
def smoke_config():
    return get_preset("smoke")


@pytest.fixture(scope="session")
def smoke_splits(smoke_config):
    return load_splits(smoke_config.data)
