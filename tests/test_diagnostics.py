"""The collapse diagnostics against their formulas written out one pair at a time, and on a
hand-made collapsed case."""

import math

import keras
import numpy as np
import pytest

from simclr_lab import diagnostics
from simclr_lab.diagnostics import (
    DiagnosticsMonitor,
    alignment,
    effective_rank,
    embedding_std,
    offline_diagnostics,
    uniformity,
)


def _unit(row):
    norm = math.sqrt(sum(x * x for x in row))
    return [x / norm for x in row]


def slow_alignment(a, b):
    total = 0.0
    for row_a, row_b in zip(a, b):
        u, v = _unit(row_a), _unit(row_b)
        total += sum((x - y) ** 2 for x, y in zip(u, v))
    return total / len(a)


def slow_uniformity(a, t=2.0):
    rows = [_unit(row) for row in a]
    values = []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            squared = sum((x - y) ** 2 for x, y in zip(rows[i], rows[j]))
            values.append(math.exp(-t * squared))
    return math.log(sum(values) / len(values))


def slow_std(a):
    rows = [_unit(row) for row in a]
    n, d = len(rows), len(rows[0])
    stds = []
    for k in range(d):
        column = [row[k] for row in rows]
        mean = sum(column) / n
        stds.append(math.sqrt(sum((x - mean) ** 2 for x in column) / n))
    return sum(stds) / d


def slow_effective_rank(a):
    rows = np.array([_unit(row) for row in a])
    # Singular values as the square roots of the Gram matrix's eigenvalues.
    eigenvalues = np.linalg.eigvalsh(rows.T @ rows)
    singular = [math.sqrt(max(e, 0.0)) for e in eigenvalues]
    total = sum(singular)
    entropy = -sum(s / total * math.log(s / total) for s in singular if s / total > 1e-12)
    return math.exp(entropy)


@pytest.mark.parametrize("n, d", [(2, 3), (7, 5), (30, 8), (12, 40)])
def test_each_diagnostic_matches_its_formula(n, d):
    rng = np.random.default_rng(n * 100 + d)
    a, b = rng.normal(size=(2, n, d))
    a_list, b_list = a.tolist(), b.tolist()
    assert alignment(a, b) == pytest.approx(slow_alignment(a_list, b_list), rel=1e-9)
    assert uniformity(a) == pytest.approx(slow_uniformity(a_list), rel=1e-9, abs=1e-12)
    assert embedding_std(a) == pytest.approx(slow_std(a_list), rel=1e-9)
    assert effective_rank(a) == pytest.approx(slow_effective_rank(a_list), rel=1e-6)


def test_a_collapsed_set_scores_its_worst():
    same = np.tile(np.array([[0.3, -1.2, 2.0, 0.5]]), (9, 1))
    assert embedding_std(same) == pytest.approx(0.0, abs=1e-12)
    assert effective_rank(same) == pytest.approx(1.0, abs=1e-9)
    assert uniformity(same) == pytest.approx(0.0, abs=1e-12)  # log mean exp(-2 * 0)
    assert alignment(same, same) == pytest.approx(0.0, abs=1e-12)


def test_a_spread_set_scores_near_its_best():
    # The 2D axes, both ways round: spread evenly over every direction.
    d = 6
    spread = np.concatenate([np.eye(d), -np.eye(d)])
    assert embedding_std(spread) == pytest.approx(1 / math.sqrt(d), rel=1e-9)
    assert effective_rank(spread) == pytest.approx(d, rel=1e-9)
    assert uniformity(spread) < uniformity(spread[:2] + 1e-3)


def test_scale_of_the_rows_does_not_matter():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 4))
    scaled = a * rng.uniform(0.1, 10, size=(10, 1))
    assert embedding_std(scaled) == pytest.approx(embedding_std(a), rel=1e-9)
    assert uniformity(scaled) == pytest.approx(uniformity(a), rel=1e-9)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: alignment(np.ones((3, 2)), np.ones((4, 2))), "differ in shape"),
        (lambda: uniformity(np.ones((1, 2))), "at least 2"),
        (lambda: embedding_std(np.ones(5)), r"\(N, D\)"),
        (lambda: effective_rank(np.full((3, 2), np.nan)), "NaN"),
        (lambda: diagnostics.held_out_sample(np.zeros((4, 8, 8, 3)), 2), "uint8"),
        (lambda: diagnostics.held_out_sample(np.zeros((4, 8, 8, 3), "uint8"), 1), "size=1"),
        (lambda: DiagnosticsMonitor(np.zeros((4, 8, 8, 3), "uint8"), space="logits"), "logits"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_offline_diagnostics_of_a_constant_network_show_collapse():
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3)).astype("uint8")
    constant = keras.Sequential(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(5, kernel_initializer="zeros", bias_initializer="ones"),
        ]
    )
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    augmenter = keras.Sequential([keras.layers.Rescaling(1 / 255), flip])
    found = offline_diagnostics(constant, augmenter, images, size=16)
    assert found["std"] == pytest.approx(0.0, abs=1e-6)
    assert found["rank"] == pytest.approx(1.0, abs=1e-4)
    assert found["alignment"] == pytest.approx(0.0, abs=1e-6)


def test_monitor_adds_every_diagnostic_to_the_logs(smoke_config, smoke_splits):
    from simclr_lab.runs.train import build_contrastive_model

    model = build_contrastive_model(smoke_config, smoke_splits)
    monitor = DiagnosticsMonitor(smoke_splits.test_images, size=64)
    monitor.set_model(model)
    monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert set(logs) == set(diagnostics.LOG_NAMES.values())
    width = smoke_config.model.width
    assert 0 < logs["val_emb_std"] <= 1 and 1 <= logs["val_eff_rank"] <= width
    assert logs["val_uniformity"] <= 0 and 0 <= logs["val_alignment"] <= 4
    # The same views every epoch: an unchanged model measures the same numbers.
    again = {}
    monitor.on_epoch_end(1, again)
    assert again == logs


@pytest.mark.slow
def test_monitor_changes_no_training_step_and_reaches_the_dashboard(
    smoke_config, smoke_splits, tmp_path
):
    from simclr_lab.faces.dashboard import LiveDashboard
    from simclr_lab.runs.train import pretrain

    plain = pretrain(smoke_config, smoke_splits, tmp_path / "plain", verbose=0)
    dashboard = LiveDashboard("pretraining", show=False)
    monitor = DiagnosticsMonitor(smoke_splits.test_images, size=64)
    watched = pretrain(
        smoke_config, smoke_splits, tmp_path / "watched", [monitor, dashboard], verbose=0
    )
    assert watched.history["c_loss"] == plain.history["c_loss"]
    for a, b in zip(plain.model.encoder.get_weights(), watched.model.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    epochs = smoke_config.pretrain.epochs
    for name in diagnostics.LOG_NAMES.values():
        assert len(watched.history[name]) == epochs  # kept with the run
        assert dashboard.history[name] == watched.history[name]
    titles = [ax.get_title() for ax in dashboard._draw().axes]
    assert "effective rank" in titles and "std of normalised projections" in titles


@pytest.mark.slow
def test_compare_writes_the_diagnostics_to_metrics_json(smoke_config, smoke_comparison):
    metrics = smoke_comparison.metrics
    history = metrics["phases"]["pretraining"]["history"]
    assert len(history["val_eff_rank"]) == smoke_config.pretrain.epochs
    assert set(metrics["diagnostics"]) == set(diagnostics.LOG_NAMES)
    assert 1 <= metrics["diagnostics"]["rank"] <= smoke_config.model.width


def test_ranking_of_the_positive_among_the_other_views():
    u = np.eye(4)
    assert list(diagnostics.positive_ranks(u, u)) == [1] * 8  # each view's twin is nearest
    v = np.roll(u, 1, axis=0)  # every positive is orthogonal to its anchor: ties count against
    ranks = diagnostics.positive_ranks(u, v)
    assert ranks.shape == (8,) and np.all(ranks > 1)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    measures = diagnostics.ranking(a, b)  # unrelated views: chance, mean rank about N
    assert measures["top1"] < 0.02 and 240 < measures["mean_rank"] < 360
    close = diagnostics.ranking(a, a + 0.01 * b)
    assert close == {"top1": 1.0, "top5": 1.0, "mean_rank": 1.0}
    with pytest.raises(ValueError, match="same N"):
        diagnostics.positive_ranks(a, b[:10])
