"""Contrastive losses on two views' projections, and contrastive accuracy.

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


def contrastive_accuracy(similarities):
    """Share of rows of S and of S^T whose largest entry is the diagonal (SimCLR, Table 5).

    similarities: (N, N). Returns a scalar in [0, 1].
    """
    targets = ops.arange(ops.shape(similarities)[0])
    rows = ops.argmax(similarities, axis=1) == targets
    cols = ops.argmax(similarities, axis=0) == targets
    return (ops.mean(ops.cast(rows, "float32")) + ops.mean(ops.cast(cols, "float32"))) / 2
