"""Shipped pretrained encoders: found like a cache entry, checked, never preferred to a local
run, refused when damaged or trained on other data."""

import dataclasses
import json

import numpy as np
import pytest

from simclr_lab import evaluate, shipped, train
from simclr_lab.data import load_splits
from simclr_lab.presets import get_preset


@pytest.fixture
def config(smoke_config):
    return smoke_config.replace(**{"pretrain.epochs": 1})


@pytest.fixture
def shipped_root(tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    monkeypatch.setattr(shipped, "SHIPPED_DIR", root)
    return root


def _ship(result, root):
    about = {"epochs": 1, "precision": "float32", "machine": "test", "seconds": 1.0}
    settings = json.loads((result.run_dir / "settings.json").read_text())
    return shipped.ship(result.model, settings, result.history, about, root)


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_a_shipped_run_loads_where_no_local_run_exists(
    config, smoke_splits, tmp_path, shipped_root
):
    trained = train.pretrain(config, smoke_splits, tmp_path / "a", verbose=0)
    folder = _ship(trained, shipped_root)
    assert (folder / "weights.npz").stat().st_size < (
        trained.run_dir / "weights.weights.h5"
    ).stat().st_size
    loaded = train.pretrain(config, smoke_splits, tmp_path / "empty", verbose=0)
    assert loaded.from_cache and loaded.run_dir == folder
    assert _same_weights(loaded.model, trained.model) and loaded.history == trained.history
    assert train.provenance(loaded).startswith("shipped encoder, 1 epochs, trained in float32")
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_a_local_run_comes_first_and_one_setting_trains_instead(
    config, smoke_splits, tmp_path, shipped_root
):
    local = train.pretrain(config, smoke_splits, tmp_path / "cache", verbose=0)
    other = train.pretrain(config.replace(seed=3), smoke_splits, tmp_path / "other", verbose=0)
    settings = json.loads((local.run_dir / "settings.json").read_text())
    about = {"epochs": 1, "precision": "float32", "machine": "test", "seconds": 1.0}
    shipped.ship(other.model, settings, local.history, about, shipped_root)  # other weights
    again = train.pretrain(config, smoke_splits, tmp_path / "cache", verbose=0)
    assert again.run_dir == local.run_dir and _same_weights(again.model, local.model)
    fresh = train.pretrain(
        config.replace(use_shipped=False), smoke_splits, tmp_path / "fresh", verbose=0
    )
    assert not fresh.from_cache and fresh.shipped is None
    assert train.provenance(fresh).startswith("trained here in ")


def test_a_damaged_shipped_run_is_refused_and_training_takes_over(
    config, smoke_splits, tmp_path, shipped_root, capsys
):
    trained = train.pretrain(config, smoke_splits, tmp_path / "a", verbose=0)
    folder = _ship(trained, shipped_root)
    weights = folder / "weights.npz"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = train.pretrain(config, smoke_splits, tmp_path / "b", verbose=0)
    assert not result.from_cache and result.run_dir.parent == tmp_path / "b"
    assert "weights.npz fail their checksum; training instead" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing touched


def test_a_shipped_run_of_other_data_is_ignored_with_a_message(
    config, smoke_splits, tmp_path, shipped_root, capsys
):
    trained = train.pretrain(config, smoke_splits, tmp_path / "a", verbose=0)
    _ship(trained, shipped_root)
    flipped = smoke_splits.unlabelled.copy()
    flipped[0] = 255 - flipped[0]
    other_data = dataclasses.replace(smoke_splits, unlabelled=flipped)
    result = train.pretrain(config, other_data, tmp_path / "b", verbose=0)
    assert not result.from_cache
    assert "has these settings but was trained on other data" in capsys.readouterr().out


def test_the_match_leaves_out_only_the_arithmetic():
    settings = {"phase": "pretraining", "model": {"width": 128, "precision": "float32"}, "seed": 0}
    bf16 = {**settings, "model": {"width": 128, "precision": "mixed_bfloat16"}}
    assert shipped.match_key(settings) == shipped.match_key(bf16)
    wider = {**settings, "model": {"width": 256, "precision": "float32"}}
    assert shipped.match_key(settings) != shipped.match_key(wider)


def test_use_shipped_is_a_checked_setting_outside_every_cache_key(config):
    assert config.replace(use_shipped=False).key_dict() == config.key_dict()
    with pytest.raises(ValueError, match="use_shipped"):
        config.replace(use_shipped="no")


@pytest.mark.slow
def test_the_shipped_cpu_encoder_loads_and_scores_as_stored(tmp_path):
    cpu = [
        r for r in shipped.shipped_runs() if r.about["preset"] == "cpu" and not r.about["changes"]
    ]
    assert len(cpu) == 1, [r.path.name for r in shipped.shipped_runs()]
    config = get_preset("cpu", **{"model.precision": "float32"})  # as on a CPU without bfloat16
    splits = load_splits(config.data)
    result = train.pretrain(config, splits, tmp_path, verbose=0)  # an empty cache
    assert result.run_dir == cpu[0].path and "shipped encoder, 12 epochs" in result.shipped
    scores = evaluate.frozen_scores(result.model.encoder, splits)
    stored = cpu[0].about["frozen_float32"]
    assert abs(scores["knn_acc"] - stored["knn_acc"]) <= 0.005, (scores, stored)
    assert abs(scores["linear_probe_acc"] - stored["linear_probe_acc"]) <= 0.005, (scores, stored)
    size = sum(p.stat().st_size for r in shipped.shipped_runs() for p in r.path.iterdir())
    assert size <= 10e6, size  # what the package carries
