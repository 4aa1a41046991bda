import numpy as np
import pytest

from simclr_lab.loss import contrastive_accuracy, get_loss, infonce_loss, ntxent_loss


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
