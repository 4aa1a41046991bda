import keras
import numpy as np
import pytest

from simclr_lab.loss import (
    barlow_twins_loss,
    contrastive_accuracy,
    get_loss,
    infonce_loss,
    ntxent_loss,
    positives_only_loss,
    simsiam_loss,
)


def _log_softmax_row(row, target):
    row = row - row.max()
    return row[target] - np.log(np.exp(row).sum())


def slow_infonce(p1, p2, temperature):
    """Straight from the formula, one anchor at a time."""
    n = len(p1)
    a = p1 / np.linalg.norm(p1, axis=1, keepdims=True)
    b = p2 / np.linalg.norm(p2, axis=1, keepdims=True)
    total = 0.0
    for i in range(n):
        forward = np.array([a[i] @ b[j] for j in range(n)]) / temperature
        backward = np.array([b[i] @ a[j] for j in range(n)]) / temperature
        total -= _log_softmax_row(forward, i) + _log_softmax_row(backward, i)
    return total / (2 * n)


def slow_ntxent(p1, p2, temperature):
    n = len(p1)
    z = np.concatenate([p1, p2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [k for k in range(2 * n) if k != i]
        logits = np.array([z[i] @ z[k] for k in others]) / temperature
        total -= _log_softmax_row(logits, others.index(positive))
    return total / (2 * n)


@pytest.mark.parametrize("n", [2, 5, 17])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
@pytest.mark.parametrize("name, slow", [("infonce", slow_infonce), ("ntxent", slow_ntxent)])
def test_loss_matches_slow_loop(n, temperature, name, slow):
    rng = np.random.default_rng(n)
    p1 = rng.normal(size=(n, 8)).astype("float32")
    p2 = rng.normal(size=(n, 8)).astype("float32")
    loss, similarities = get_loss(name)(p1, p2, temperature)
    np.testing.assert_allclose(float(loss), slow(p1, p2, temperature), rtol=1e-4)
    assert tuple(similarities.shape) == (n, n)


@pytest.mark.parametrize("loss_fn", [infonce_loss, ntxent_loss])
def test_loss_is_symmetric_in_the_views(loss_fn):
    rng = np.random.default_rng(0)
    p1, p2 = rng.normal(size=(2, 6, 4)).astype("float32")
    np.testing.assert_allclose(float(loss_fn(p1, p2)[0]), float(loss_fn(p2, p1)[0]), rtol=1e-5)


def test_identical_projections_give_log_n():
    # Every projection the same: all logits equal, so each softmax is uniform over N.
    p = np.ones((6, 3), dtype="float32")
    np.testing.assert_allclose(float(infonce_loss(p, p, 0.1)[0]), np.log(6), rtol=1e-5)
    # NT-Xent: uniform over the 2N - 1 other views.
    np.testing.assert_allclose(float(ntxent_loss(p, p, 0.1)[0]), np.log(11), rtol=1e-5)


def test_orthonormal_pairs_closed_form():
    # Views agree and items are orthonormal: S = I / T, loss = log(1 + (N - 1) e^(-1/T)).
    n, t = 4, 0.5
    p = np.eye(n, dtype="float32")
    expected = np.log(1 + (n - 1) * np.exp(-1 / t))
    np.testing.assert_allclose(float(infonce_loss(p, p, t)[0]), expected, rtol=1e-5)


def test_contrastive_accuracy_hand_case():
    s = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.0, 0.1, 0.7]], dtype="float32")
    # rows: argmax 0, 0, 2 -> 2 of 3 right; columns: argmax 0, 1, 2 -> 3 of 3 right.
    np.testing.assert_allclose(float(contrastive_accuracy(s)), (2 / 3 + 1) / 2, rtol=1e-6)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="'nce'"):
        get_loss("nce")


def _unit_row(row):
    return row / np.sqrt(np.sum(row**2))


def slow_positives_only(p1, p2):
    return sum(np.sum((_unit_row(a) - _unit_row(b)) ** 2) for a, b in zip(p1, p2)) / len(p1)


def slow_simsiam(q1, q2, p1, p2):
    total = 0.0
    for i in range(len(p1)):
        total -= _unit_row(q1[i]) @ _unit_row(p2[i]) + _unit_row(q2[i]) @ _unit_row(p1[i])
    return total / (2 * len(p1))


def slow_barlow_twins(p1, p2, weight):
    n, d = p1.shape

    def standardised(column):
        mean = sum(column) / n
        variance = sum((x - mean) ** 2 for x in column) / n
        return [(x - mean) / np.sqrt(variance + 1e-5) for x in column]

    a = [standardised(p1[:, k]) for k in range(d)]  # per dimension, over the batch
    b = [standardised(p2[:, k]) for k in range(d)]
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][s] * b[j][s] for s in range(n)) / n
            total += (1 - c) ** 2 if i == j else weight * c**2
    return total


@pytest.mark.parametrize("n, d", [(2, 3), (9, 4), (16, 8)])
def test_methods_without_negatives_match_slow_loops(n, d):
    rng = np.random.default_rng(n + d)
    p1, p2, q1, q2 = rng.normal(size=(4, n, d)).astype("float32")
    loss, similarities = positives_only_loss(p1, p2)
    np.testing.assert_allclose(float(loss), slow_positives_only(p1, p2), rtol=1e-5)
    assert tuple(similarities.shape) == (n, n)
    loss, similarities = simsiam_loss(q1, q2, p1, p2)
    np.testing.assert_allclose(float(loss), slow_simsiam(q1, q2, p1, p2), rtol=1e-5, atol=1e-6)
    assert tuple(similarities.shape) == (n, n)
    for weight in (5e-3, 0.5):
        loss, _ = barlow_twins_loss(p1, p2, weight)
        expected = slow_barlow_twins(p1.astype("float64"), p2.astype("float64"), weight)
        np.testing.assert_allclose(float(loss), expected, rtol=1e-4)


def test_a_constant_encoder_wins_without_negatives_and_pays_with_them():
    # Every projection the same: positives-only reaches its minimum (0), SimSiam too when
    # the predictor is the identity (-1); Barlow Twins pays D, and NT-Xent log(2N - 1).
    n, d = 8, 5
    p = np.tile(np.arange(1, d + 1, dtype="float32"), (n, 1))
    assert float(positives_only_loss(p, p)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(simsiam_loss(p, p, p, p)[0]) == pytest.approx(-1.0, abs=1e-6)
    assert float(barlow_twins_loss(p, p)[0]) == pytest.approx(d, rel=1e-5)
    assert float(ntxent_loss(p, p, 0.1)[0]) == pytest.approx(np.log(2 * n - 1), rel=1e-5)


def test_simsiam_sends_no_gradient_through_its_targets():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    rng = np.random.default_rng(1)
    q1, q2, p1, p2 = (tf.Variable(a) for a in rng.normal(size=(4, 6, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        loss, _ = simsiam_loss(q1, q2, p1, p2)
    to_predictions, to_targets = tape.gradient(loss, [q1, p1])
    assert to_predictions is not None and float(tf.reduce_max(tf.abs(to_predictions))) > 0
    assert to_targets is None
