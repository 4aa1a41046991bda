"""Shipped runs (encoders, baselines, finetunings) and the shipped sweep: found like a cache
entry, checked, never preferred to a local run, refused when damaged or made otherwise."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from simclr_lab import evaluate
from simclr_lab.runs import shipped, train
from simclr_lab.runs.cache import arrays_digest
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources.splits import Splits
from simclr_lab.studies import compare, sweep


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
    assert (folder / "model.weights.h5").stat().st_size < (  # no optimizer state
        trained.run_dir / "weights.weights.h5"
    ).stat().st_size / 2
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
    weights = folder / "model.weights.h5"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = train.pretrain(config, smoke_splits, tmp_path / "b", verbose=0)
    assert not result.from_cache and result.run_dir.parent == tmp_path / "b"
    assert "model.weights.h5 fail their checksum; training instead" in capsys.readouterr().out
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


def _cpu_runs():
    """{phase: ShippedRun} of the `cpu` preset as it is (no changed settings), one a phase."""
    runs = [
        r for r in shipped.shipped_runs() if r.about["preset"] == "cpu" and not r.about["changes"]
    ]
    assert len({r.phase for r in runs}) == len(runs), [r.path.name for r in runs]
    return {r.phase: r for r in runs}


@pytest.mark.slow
def test_the_shipped_cpu_encoder_loads_and_scores_as_stored(cpu_splits, tmp_path):
    run = _cpu_runs()["pretraining"]
    config = get_preset("cpu", **{"model.precision": "float32"})  # as on a CPU without bfloat16
    splits = cpu_splits
    result = train.pretrain(config, splits, tmp_path, verbose=0)  # an empty cache
    assert result.run_dir == run.path and "shipped encoder, 12 epochs" in result.shipped
    scores = evaluate.frozen_scores(result.model.encoder, splits)
    stored = run.about["frozen_float32"]
    assert abs(scores["knn_acc"] - stored["knn_acc"]) <= 0.005, (scores, stored)
    assert abs(scores["linear_probe_acc"] - stored["linear_probe_acc"]) <= 0.005, (scores, stored)
    size = sum(p.stat().st_size for r in shipped.shipped_runs() for p in r.path.iterdir())
    assert size <= 10e6, size  # what the package carries


@pytest.fixture(scope="module")
def trio(smoke_config, smoke_splits, tmp_path_factory):
    """A 1-epoch smoke pretraining, baseline and finetuning, trained once in their own cache."""
    config = smoke_config.replace(**{"pretrain.epochs": 1, "supervised.epochs": 1})
    cache = tmp_path_factory.mktemp("trio")
    pretrained = train.pretrain(config, smoke_splits, cache, verbose=0)
    baseline = train.train_baseline(config, smoke_splits, cache, verbose=0)
    finetuned = train.finetune(config, smoke_splits, pretrained, cache, verbose=0)
    return config, {"pretraining": pretrained, "baseline": baseline, "finetuning": finetuned}


def _supervised(config, splits, phase, cache, pretrained=None):
    if phase == "baseline":
        return train.train_baseline(config, splits, cache, verbose=0)
    return train.finetune(config, splits, pretrained, cache, verbose=0)


def test_shipped_baseline_and_finetuning_load_where_no_local_run_exists(
    trio, smoke_splits, tmp_path, shipped_root
):
    config, runs = trio
    folders = {name: _ship(result, shipped_root) for name, result in runs.items()}
    empty = tmp_path / "empty"
    pretrained = train.pretrain(config, smoke_splits, empty, verbose=0)  # the shipped encoder
    for phase in ("baseline", "finetuning"):
        loaded = _supervised(config, smoke_splits, phase, empty, pretrained)
        assert loaded.from_cache and loaded.run_dir == folders[phase] and loaded.phase == phase
        assert _same_weights(loaded.model, runs[phase].model)
        assert loaded.history == runs[phase].history
        assert train.provenance(loaded).startswith(f"shipped {phase}, 1 epochs, trained in ")
    assert not empty.exists() or not any(empty.iterdir())


def test_a_local_supervised_run_comes_first_and_use_shipped_false_trains(
    trio, smoke_splits, tmp_path, shipped_root
):
    config, runs = trio
    cache = runs["baseline"].run_dir.parent
    other = train.train_baseline(config.replace(seed=3), smoke_splits, tmp_path / "o", verbose=0)
    settings = json.loads((runs["baseline"].run_dir / "settings.json").read_text())
    about = {"epochs": 1, "precision": "float32", "machine": "test", "seconds": 1.0}
    shipped.ship(other.model, settings, other.history, about, shipped_root)  # other weights
    again = train.train_baseline(config, smoke_splits, cache, verbose=0)
    assert again.run_dir == runs["baseline"].run_dir and again.shipped is None
    assert _same_weights(again.model, runs["baseline"].model)
    fresh = train.train_baseline(
        config.replace(use_shipped=False), smoke_splits, tmp_path / "fresh", verbose=0
    )
    assert not fresh.from_cache and train.provenance(fresh).startswith("trained here in ")


@pytest.mark.parametrize("phase", ["baseline", "finetuning"])
def test_a_damaged_shipped_supervised_run_is_refused_and_training_takes_over(
    phase, trio, smoke_splits, tmp_path, shipped_root, capsys
):
    config, runs = trio
    folder = _ship(runs[phase], shipped_root)
    history = folder / "history.json"
    history.write_text(history.read_text().replace("[", "[0.5, ", 1))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = _supervised(config, smoke_splits, phase, tmp_path / "b", runs["pretraining"])
    assert not result.from_cache and result.run_dir.parent == tmp_path / "b"
    said = capsys.readouterr().out
    assert f"shipped run {folder}: history.json fail their checksum; training instead" in said
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing touched
    assert result.run_dir.name == runs[phase].run_dir.name  # the same settings, trained here


def test_a_shipped_finetuning_needs_the_same_starting_encoder(
    trio, smoke_splits, tmp_path, shipped_root
):
    config, runs = trio
    _ship(runs["finetuning"], shipped_root)
    other = train.pretrain(config.replace(seed=3), smoke_splits, tmp_path / "o", verbose=0)
    result = train.finetune(config, smoke_splits, other, tmp_path / "b", verbose=0)
    assert not result.from_cache and result.shipped is None


def _stand_in(num_classes=10, size=32):
    """Splits of zeros with the cpu preset's image shape and classes: enough to build its
    models (the shipped runs' own data is not needed to load their weights)."""
    images = np.zeros((2, size, size, 3), "uint8")
    labels = np.arange(2, dtype="int32")
    names = tuple(str(i) for i in range(num_classes))
    return Splits("stand-in", images, images, labels, images, labels, names)


def test_the_shipped_cpu_runs_are_whole_and_fit_the_cpu_preset():
    runs = _cpu_runs()
    assert set(runs) == {"pretraining", "baseline", "finetuning"}, runs
    config = get_preset("cpu", **{"model.precision": "float32"})
    splits = _stand_in()
    key = shipped.match_key(config.key_dict("data", "model", "supervised", "seed"))
    del key["supervised"]["steps_per_epoch"]  # one pass, as the preset trains
    supervised_key = json.loads(json.dumps(key))
    encoder = train.build_contrastive_model(config, splits)
    runs["pretraining"].load(encoder, config.pretrain.epochs)  # checksums checked first
    for phase in ("baseline", "finetuning"):
        run = runs[phase]
        settings = shipped.match_key(run.settings)
        assert {k: settings[k] for k in supervised_key} == supervised_key
        assert run.phase == settings["phase"] == phase
        model = train.build_classifier(config, splits)
        history = run.load(model, config.supervised.epochs)
        assert max(history["val_acc"]) == pytest.approx(run.about["max_val_accuracy"])
        assert run.describe().startswith(f"shipped {phase}, 60 epochs, trained in ")
    digest = arrays_digest(encoder.encoder.get_weights())
    for run in shipped.shipped_runs():  # each finetuning starts from the shipped encoder
        if run.phase == "finetuning" and run.about["preset"] == "cpu":
            assert run.settings["encoder_weights"] == digest, run.path.name
    size = sum(p.stat().st_size for r in shipped.shipped_runs() for p in r.path.iterdir())
    assert size <= 10e6, size  # what the package carries


def _quiet(*_):
    pass


@pytest.fixture
def shipped_sweep(tmp_path, monkeypatch, shipped_root):
    """A tiny smoke sweep computed in a cache of its own and shipped as a record made on
    'test machine'; returns (config, cache, its options)."""
    path = tmp_path / "sweep_results.json"
    monkeypatch.setattr(sweep, "SHIPPED_RESULTS", path)
    config = get_preset("smoke", **{"pretrain.epochs": 1, "supervised.epochs": 1})
    options = {"per_class": (1,), "draws": 1, "supervised_per_class": (1,), "supervised_draws": 1}
    cache = tmp_path / "cache"
    record = sweep.run_sweep(
        config.replace(use_shipped=False), tmp_path / "made", cache, log=_quiet, **options
    )
    assert record["source"].startswith("computed here on ")
    shipped_record = {k: v for k, v in record.items() if k not in ("source", "wall_seconds")}
    path.write_text(json.dumps({**shipped_record, "machine": "test machine"}))
    shipped.seal_results(path.parent)  # as benchmarks/ship_runs.py does
    return config, cache, options


def test_the_sweep_returns_the_shipped_record_only_when_its_settings_match(
    shipped_sweep, tmp_path
):
    config, cache, options = shipped_sweep
    said = []
    local = sweep.run_sweep(config, tmp_path / "local", cache, log=said.append, **options)
    assert local["source"].startswith("computed here on ")  # every supervised run is cached
    (baseline,) = cache.glob("baseline-*")
    shutil.rmtree(baseline)
    result = sweep.run_sweep(config, tmp_path / "out", cache, log=said.append, **options)
    line = "shipped results of `simclr-lab sweep`, made on test machine in float32 on "
    assert result["source"].startswith(line) and result["table"].startswith(f"_{line}")
    assert any(line in text for text in said)
    assert result["supervised_rows"] == local["supervised_rows"]
    written = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert written["source"] == result["source"]
    assert not baseline.exists()  # nothing trained
    more = sweep.run_sweep(config, tmp_path / "o2", cache, log=_quiet, **{**options, "draws": 2})
    assert more["source"].startswith("computed here on ")  # other settings: computed
    shutil.rmtree(baseline)
    own = sweep.run_sweep(
        config.replace(use_shipped=False), tmp_path / "o3", cache, log=_quiet, **options
    )
    assert own["source"].startswith("computed here on ") and baseline.is_dir()


@pytest.mark.slow
def test_lesson_5s_cpu_runs_load_from_the_package_on_an_empty_cache(cpu_splits, tmp_path):
    config = get_preset("cpu", **{"model.precision": "float32"})  # as on a CPU without bfloat16
    splits = cpu_splits
    pretrained = train.pretrain(config, splits, tmp_path, verbose=0)
    baseline = train.train_baseline(config, splits, tmp_path, verbose=0)
    finetuned = train.finetune(config, splits, pretrained, tmp_path, verbose=0)
    slow = config.replace(**{"supervised.learning_rate": 1e-4})  # the lesson's exercise
    gentle = train.finetune(slow, splits, pretrained, tmp_path, verbose=0)
    for result, what in (
        (baseline, "baseline"),
        (finetuned, "finetuning"),
        (gentle, "finetuning"),
    ):
        assert result.shipped.startswith(f"shipped {what}, 60 epochs, trained in mixed_bfloat16")
        stored = shipped.ShippedRun(result.run_dir).about
        assert result.max_val_accuracy == pytest.approx(stored["max_val_accuracy"])
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_a_comparison_of_shipped_runs_says_it_trained_nothing_and_how_to(
    trio, tmp_path, shipped_root
):
    config, runs = trio
    for result in runs.values():
        _ship(result, shipped_root)
    lines = []
    compare.run_comparison(config, tmp_path / "out", tmp_path / "empty", 0, lines.append)
    said = [line for line in lines if "nothing was trained here" in line]
    assert len(said) == 1 and "--preset smoke --set use_shipped=false" in said[0]


def test_a_comparison_that_trained_does_not_say_it_trained_nothing(smoke_comparison):
    assert smoke_comparison.printed.count("(trained here in ") == 3
    assert "nothing was trained" not in smoke_comparison.printed
