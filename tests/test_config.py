import dataclasses

import pytest

from simclr_lab.config import Config
from simclr_lab.runs import devices
from simclr_lab.runs.presets import PRESETS, get_preset


def test_defaults_are_the_reference_recipe():
    config = Config()
    assert config.data.source == "stl10" and config.data.image_size == 96
    assert config.pretrain.batch_size == 525 and config.pretrain.epochs == 20
    assert config.pretrain.temperature == 0.1 and config.model.width == 128
    assert config.pretrain.augment.min_area == 0.25 and config.supervised.augment.min_area == 0.75
    assert get_preset("reference") == config


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_preset("cpu").seed = 3


def test_preset_from_environment(monkeypatch):
    monkeypatch.setenv("SIMCLR_LAB_PRESET", "smoke")
    assert get_preset().name == "smoke"


def test_precision_from_environment_unless_set(monkeypatch):
    monkeypatch.setenv("SIMCLR_LAB_PRECISION", "float32")
    assert get_preset("cpu").model.precision == "float32"  # "auto" would pick bfloat16 here
    explicit = get_preset("cpu", **{"model.precision": "mixed_bfloat16"})
    assert explicit.model.precision == "mixed_bfloat16"
    monkeypatch.setenv("SIMCLR_LAB_PRECISION", "fp8")
    with pytest.raises(ValueError, match="'fp8'"):
        get_preset("cpu")


@pytest.mark.parametrize("gpus", [[], [("NVIDIA H200", 9.0)]])
def test_the_default_preset_is_cpu_with_or_without_a_gpu(monkeypatch, gpus):
    monkeypatch.delenv("SIMCLR_LAB_PRESET", raising=False)
    monkeypatch.setattr(devices, "_visible_gpus", lambda: gpus)  # whatever this machine has
    assert get_preset().name == "cpu"


def test_dotted_overrides():
    config = get_preset("cpu", **{"pretrain.epochs": 2, "data.labels_per_class": 10})
    assert config.pretrain.epochs == 2 and config.data.labels_per_class == 10
    assert PRESETS["cpu"].pretrain.epochs != 2  # the preset itself is unchanged


def test_every_preset_says_what_it_is():
    for name, config in PRESETS.items():
        assert config.name == name and len(config.description) > 40


def test_reference_says_its_download_and_time_before_anything_starts(tmp_path, monkeypatch):
    from simclr_lab.studies import compare

    def no_download(*args, **kwargs):
        raise RuntimeError("stopped before the download")

    monkeypatch.setattr(compare, "load_splits", no_download)
    lines = []
    with pytest.raises(RuntimeError, match="before the download"):
        compare.run_comparison(get_preset("reference"), tmp_path, tmp_path, 0, lines.append)
    assert "2.6 GB" in lines[0] and "minutes" in lines[0]
