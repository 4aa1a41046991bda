"""Contrastive losses on two views' projections, the losses of methods without negatives,
and contrastive accuracy.

Each loss returns (loss, similarities): the caller computes accuracy from the similarities,
so metrics live with the model, not inside the loss.
"""

from __future__ import annotations

from keras import ops

from simclr_lab import config


def cosine_similarities(projections_1, projections_2):
    """(N, D), (N, D) -> (N, N) cosine similarities of every pair across the two views."""
    p1 = ops.normalize(projections_1, axis=1)
    p2 = ops.normalize(projections_2, axis=1)
    return ops.matmul(p1, ops.transpose(p2))  # (N, N)


def _cross_entropy(targets, logits):
    return ops.mean(ops.sparse_categorical_crossentropy(targets, logits, from_logits=True))


def infonce_loss(projections_1, projections_2, temperature=0.1):
    """The reference's symmetric InfoNCE, with N - 1 negatives per anchor.

    S = normalise(P1) @ normalise(P2)^T / T, shape (N, N), targets i -> i;
    loss = (CE(targets, S) + CE(targets, S^T)) / 2.
    Returns (loss scalar, S (N, N)).
    """
    similarities = cosine_similarities(projections_1, projections_2) / temperature
    targets = ops.arange(ops.shape(similarities)[0])
    loss = (
        _cross_entropy(targets, similarities)
        + _cross_entropy(targets, ops.transpose(similarities))
    ) / 2
    return loss, similarities


def ntxent_loss(projections_1, projections_2, temperature=0.1):
    """The SimCLR paper's NT-Xent, with all 2N - 2 other views as negatives.

    Z = normalise(concat(P1, P2)) (2N, D); logits = Z Z^T / T with the diagonal removed;
    view i's positive is view i + N (and back); loss = mean CE over the 2N rows.
    Returns (loss scalar, the cross-view block S (N, N)).
    """
    n = ops.shape(projections_1)[0]
    z = ops.normalize(ops.concatenate([projections_1, projections_2], axis=0), axis=1)
    logits = ops.matmul(z, ops.transpose(z)) / temperature  # (2N, 2N)
    logits = logits - ops.eye(2 * n, dtype=logits.dtype) * 1e9  # a view is not its own negative
    targets = ops.concatenate([ops.arange(n) + n, ops.arange(n)])
    return _cross_entropy(targets, logits), logits[:n, n:]


# The names `config.LOSSES` allows, each with its function: a name added to one but not the
# other fails at import.
LOSSES = {name: {"infonce": infonce_loss, "ntxent": ntxent_loss}[name] for name in config.LOSSES}


def get_loss(name: str):
    """The loss function called `name` ("infonce" or "ntxent")."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss={name!r}; allowed: {', '.join(map(repr, LOSSES))}.")
    return LOSSES[name]


def positives_only_loss(projections_1, projections_2):
    """Pull the two views together, with no negatives: mean ||u_i - v_i||^2 = 2 - 2 cos.

    u, v: the normalised rows of P1, P2 (N, D). A constant encoder reaches its minimum, 0.
    Returns (loss scalar, cosine similarities (N, N)).
    """
    similarities = cosine_similarities(projections_1, projections_2)
    return ops.mean(2.0 - 2.0 * ops.diagonal(similarities)), similarities


def _mean_cosine(a, b):
    """Mean over rows of cos(a_i, b_i): (N, D), (N, D) -> scalar."""
    return ops.mean(ops.sum(ops.normalize(a, axis=1) * ops.normalize(b, axis=1), axis=1))


def simsiam_loss(predictions_1, predictions_2, projections_1, projections_2):
    """SimSiam (Chen and He 2021): -(cos(Q1, sg(P2)) + cos(Q2, sg(P1))) / 2, row by row.

    Q1, Q2: the predictor's outputs on each view's projection P1, P2 (N, D); sg: stop-gradient,
    so each branch's projection is a fixed target for the other's prediction. From -1 to 1.
    Returns (loss scalar, cosine similarities of P1 and P2 (N, N)).
    """
    target_1 = ops.stop_gradient(projections_1)
    target_2 = ops.stop_gradient(projections_2)
    loss = -(_mean_cosine(predictions_1, target_2) + _mean_cosine(predictions_2, target_1)) / 2
    return loss, cosine_similarities(projections_1, projections_2)


def _standardise(x, epsilon=1e-5):
    """Each column of x (N, D) to zero mean and unit variance over the batch."""
    centred = x - ops.mean(x, axis=0, keepdims=True)
    return centred / ops.sqrt(ops.mean(ops.square(centred), axis=0, keepdims=True) + epsilon)


def barlow_twins_loss(projections_1, projections_2, redundancy_weight=5e-3):
    """Barlow Twins (Zbontar et al. 2021): the cross-correlation C (D, D) of the two views'
    projections, each dimension standardised over the batch, pushed towards the identity:
    sum_i (1 - C_ii)^2 + redundancy_weight * sum_{i != j} C_ij^2.

    A constant encoder has C = 0 and pays D; no negatives are needed.
    Returns (loss scalar, cosine similarities of P1 and P2 (N, N)).
    """
    n = ops.cast(ops.shape(projections_1)[0], projections_1.dtype)
    a, b = _standardise(projections_1), _standardise(projections_2)
    correlation = ops.matmul(ops.transpose(a), b) / n  # (D, D)
    diagonal = ops.diagonal(correlation)
    invariance = ops.sum(ops.square(1.0 - diagonal))
    redundancy = ops.sum(ops.square(correlation)) - ops.sum(ops.square(diagonal))
    loss = invariance + redundancy_weight * redundancy
    return loss, cosine_similarities(projections_1, projections_2)


def contrastive_accuracy(similarities):
    """Share of rows of S and of S^T whose largest entry is the diagonal (SimCLR, Table 5).

    similarities: (N, N). Returns a scalar in [0, 1].
    """
    targets = ops.arange(ops.shape(similarities)[0])
    rows = ops.argmax(similarities, axis=1) == targets
    cols = ops.argmax(similarities, axis=0) == targets
    return (ops.mean(ops.cast(rows, "float32")) + ops.mean(ops.cast(cols, "float32"))) / 2
