"""Pretraining methods without negatives: the setting, the model, the cache key, and the
collapse the lesson shows (positives only) against SimSiam, which does not collapse."""

import dataclasses

import keras
import numpy as np
import pytest

from simclr_lab import config as settings
from simclr_lab.diagnostics import DiagnosticsMonitor
from simclr_lab.encoder import get_linear_probe, get_projection_head
from simclr_lab.model import ContrastiveModel
from simclr_lab.runs import train
from simclr_lab.sources.batching import PairedStream


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"method": "byol"}, "'byol'"),
        ({"method": "simsiam", "learnable_temperature": True}, "learnable_temperature=True"),
    ],
)
def test_a_bad_method_setting_is_refused_by_name(changes, named):
    with pytest.raises(settings.SettingError, match=named):
        settings.PretrainConfig(**changes)


def test_the_model_refuses_a_predictor_that_does_not_fit_the_method():
    parts = dict(
        encoder=keras.Sequential([keras.layers.Flatten()]),
        projection_head=get_projection_head(4),
        linear_probe=get_linear_probe(2),
        contrastive_augmenter=keras.Sequential([]),
        classification_augmenter=keras.Sequential([]),
    )
    with pytest.raises(ValueError, match="'simsiam'"):
        ContrastiveModel(**parts, method="simsiam")  # no predictor
    with pytest.raises(ValueError, match="'bogus'"):
        ContrastiveModel(**parts, method="bogus")


def test_simclr_runs_keep_their_cache_key_and_other_methods_get_their_own(smoke_config):
    key = train.pretraining_key(smoke_config)
    assert "method" not in key["pretrain"]  # as before methods existed: cached runs still load
    assert set(key["pretrain"]) == {
        f.name for f in dataclasses.fields(settings.PretrainConfig)
    } - {"method"}
    keys = {
        method: train.pretraining_key(smoke_config.replace(**{"pretrain.method": method}))
        for method in settings.METHODS
    }
    assert keys[settings.DEFAULT_METHOD] == key
    others = [keys[m]["pretrain"]["method"] for m in settings.METHODS[1:]]
    assert others == list(settings.METHODS[1:])
    assert len({str(k) for k in keys.values()}) == len(settings.METHODS)


def test_simclr_builds_the_same_model_as_before(smoke_config, smoke_splits):
    model = train.build_contrastive_model(smoke_config, smoke_splits)
    assert model.predictor is None
    names = [type(layer).__name__ for layer in model.projection_head.layers]
    assert names == ["Dense", "ReLU", "Dense"]  # the smoke preset's head: no BatchNorm


@pytest.mark.parametrize("method", settings.METHODS[1:])
def test_each_method_trains_a_step_with_finite_metrics(method, smoke_config, smoke_splits):
    config = smoke_config.replace(**{"pretrain.method": method})
    plan = train.pretraining_plan(config, smoke_splits)
    model = train.build_contrastive_model(config, smoke_splits, plan.steps)
    assert (model.predictor is not None) == (method == "simsiam")
    s = smoke_splits
    (u, x), y = PairedStream(s.unlabelled, s.labelled_images, s.labelled_labels, plan)[0]
    before = [w.copy() for w in model.encoder.get_weights()]
    logs = model.train_on_batch((u, x), y, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values()) and 0 <= logs["c_acc"] <= 1
    moved = [not np.array_equal(a, b) for a, b in zip(before, model.encoder.get_weights())]
    assert all(moved)  # the method's loss reaches the encoder


def _final_diagnostics(method, config, splits, cache):
    run_config = config.replace(**{"pretrain.method": method, "pretrain.epochs": 6})
    monitor = DiagnosticsMonitor(splits.test_images, size=256)
    run = train.pretrain(run_config, splits, cache, callbacks=[monitor], verbose=0)
    return run.history


@pytest.mark.slow
def test_positives_only_collapses_and_simsiam_does_not(smoke_config, smoke_splits, tmp_path):
    # 128-dimensional unit vectors spread over every direction have a std of 1/sqrt(128)
    # ~ 0.088 per dimension, and SimCLR's projections reach about 0.06 on this set. Collapsed:
    # under a quarter of that spread, with an effective rank under 2 (one direction holds
    # nearly all the embeddings' variation). SimSiam, the same run but for its predictor and
    # stop-gradient, keeps more than a quarter and a rank above 3 over these 6 epochs.
    healthy = 1 / np.sqrt(smoke_config.model.width)
    collapsed = _final_diagnostics("positives_only", smoke_config, smoke_splits, tmp_path)
    simsiam = _final_diagnostics("simsiam", smoke_config, smoke_splits, tmp_path)
    assert collapsed["val_emb_std"][-1] < healthy / 4
    assert collapsed["val_eff_rank"][-1] < 2
    assert simsiam["val_emb_std"][-1] > healthy / 4
    assert simsiam["val_eff_rank"][-1] > 3


def test_runs_side_by_side_draw_a_line_per_run_and_leave_out_missing_panels():
    from simclr_lab.figures.plots import plot_runs_side_by_side

    histories = {
        "a": {"c_loss": [3.0, 2.0], "val_emb_std": [0.05, 0.06], "val_knn_acc": [0.1, 0.2]},
        "b": {"c_loss": [1.0, 0.1], "val_emb_std": [0.02, 0.001]},
    }
    figure = plot_runs_side_by_side(histories, reference={"val_emb_std": 0.088})
    assert len(figure.axes) == 3  # no run has val_c_acc or val_eff_rank
    assert list(figure.axes[2].get_lines()[0].get_ydata()) == [10.0, 20.0]  # in percent
    assert figure.axes[2].get_title().endswith("(%)")
    assert [t.get_text() for t in figure.axes[1].get_legend().get_texts()] == ["full spread"]
    loss_lines = figure.axes[0].get_lines()
    assert [list(line.get_ydata()) for line in loss_lines] == [[3.0, 2.0], [1.0, 0.1]]
    assert len(figure.axes[1].get_lines()) == 3  # two runs and the reference
    with pytest.raises(ValueError, match="no history"):
        plot_runs_side_by_side({"a": {"loss": [1.0]}})


def test_method_step_seconds_times_each_method(smoke_config, smoke_splits):
    from simclr_lab.studies.bench import method_step_seconds

    methods = {"SimCLR": {}, "Barlow Twins": {"pretrain.method": "barlow_twins"}}
    seconds = method_step_seconds(smoke_config, smoke_splits, methods, steps=2, warmup=1)
    assert list(seconds) == ["SimCLR", "Barlow Twins"]
    assert all(0 < value < 60 for value in seconds.values())
