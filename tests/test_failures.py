"""Lesson 7's failure-mode runs: the cpu preset's ship as results and load without training;
any other run trains, is measured, and is cached."""

import pytest

from simclr_lab.runs.presets import get_preset
from simclr_lab.sources.data import load_splits
from simclr_lab.studies import failures


def test_every_compared_run_of_the_cpu_preset_ships_under_its_own_key(cpu_splits):
    short = failures.short_config(get_preset("cpu"))
    assert (short.pretrain.epochs, short.data.num_unlabelled) == (4, 10_000)
    splits = load_splits(short.data)  # from the render `cpu_splits` holds
    shipped = failures.load_shipped()
    float32 = short.replace(**{"model.precision": "float32"})  # a CPU without bfloat16
    for name, changes in failures.RUNS.items():
        key = failures.run_key(short.replace(**changes), splits)
        assert key in shipped and shipped[key]["name"] == name, name
        assert failures.run_key(float32.replace(**changes), splits) == key
        run = shipped[key]
        assert len(run["history"]["val_c_acc"]) == 4 and 0 < run["probe"] < 1
        assert {"alignment", "uniformity", "std", "rank", "knn"} <= set(run)


def test_a_run_that_does_not_ship_trains_then_loads_from_the_cache(
    smoke_config, smoke_splits, tmp_path, monkeypatch
):
    monkeypatch.setenv("SIMCLR_LAB_CACHE", str(tmp_path))
    short = failures.short_config(smoke_config)
    first = failures.runs(["SimCLR (preset)"], short, smoke_splits, shipped={})
    assert first["SimCLR (preset)"]["came"].startswith("trained here in")
    again = failures.runs(["SimCLR (preset)"], short, smoke_splits, shipped={})
    assert again["SimCLR (preset)"]["came"] == "cached"
    assert again["SimCLR (preset)"]["rank"] == pytest.approx(first["SimCLR (preset)"]["rank"])
    lines = failures.table({**first, "again": again["SimCLR (preset)"]}).splitlines()
    assert lines[0].split()[:3] == ["run", "loss", "contr.acc"] and lines[2].endswith("cached")
    key = failures.run_key(short, smoke_splits)
    shipped = {key: {**first["SimCLR (preset)"], "name": "SimCLR (preset)", "precision": "x"}}
    loaded = failures.runs(["SimCLR (preset)"], short, smoke_splits, shipped=shipped)
    assert loaded["SimCLR (preset)"]["came"] == "shipped (x)"
