"""Exercises: the learner writes a piece of the recipe in NumPy, and a check runs it.

Each `check_*(fn) -> bool` runs the learner's function on fixed inputs against the library's
answer and prints one sentence: a tick, or the first thing wrong. Typical mistakes (no
normalisation, the diagonal not masked, the temperature twice, one direction only, ...) are
computed on the same inputs and named when the output matches one; anything else is named by
its shape or distance. A stub that raises `NotWritten` gets the sentence of what to write.

| lesson | check | the learner writes |
| --- | --- | --- |
| 1 | `check_color_affine` | fn(images, scale, mixing) -> images |
| 3 | `check_nt_xent` | fn(z1, z2, temperature) -> mean NT-Xent over the 2N views |
| 3b | `check_training_step` | a keras.Model: call -> (z1, z2, probe logits); compute_loss |
| 4 | `check_knn` | fn(train, train_labels, test, k, tau) -> predicted labels |
| 7 | `check_alignment`, `check_uniformity` | fn(u, v) -> alignment; fn(u) -> uniformity |
"""

from __future__ import annotations

import keras
import numpy as np

from simclr_lab import diagnostics, evaluate, loss
from simclr_lab.augment import get_augmenter
from simclr_lab.encoder import get_encoder, get_linear_probe, get_projection_head
from simclr_lab.model import ContrastiveModel

TOLERANCE = 1e-5  # relative: float32 sums of a few hundred terms agree far closer than this


class NotWritten(NotImplementedError):
    """Raised by an exercise's stub: its message says what to write."""


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _log_softmax_ce(logits, targets):
    """Cross-entropy of each row of logits (R, C) at its target (R,): (R,)."""
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return log_z - logits[np.arange(len(logits)), targets]


def _said(error) -> str:
    """An error's own message in one line (Keras wraps one raised in `call` in bold)."""
    text = str(error).split("\x1b[1m", 1)[-1].split("\x1b[0m", 1)[0]
    return (text.strip().splitlines() or [""])[0]


def _close(got, expected) -> bool:
    got, expected = np.asarray(got, "float64"), np.asarray(expected, "float64")
    return got.shape == expected.shape and np.allclose(got, expected, rtol=TOLERANCE, atol=1e-6)


def _call(name: str, fn, *args):
    """(output, None) or (None, the sentence to print) when the stub is not written or fails."""
    if not callable(fn):
        return None, f"{name} is {fn!r}, not a function: define `def {name}(...)` and pass it."
    try:
        out = fn(*args)
    except NotWritten as stub:
        return None, f"{name} is not written yet: {_said(stub)}"
    except Exception as error:  # the learner's bug, named in one line
        return None, f"{name} raised {type(error).__name__}: {_said(error)}"
    if out is None:
        return None, f"{name} returned None: end it with `return ...`."
    try:
        return np.asarray(out, dtype="float64"), None
    except (TypeError, ValueError):
        return None, f"{name} returned a {type(out).__name__}, not numbers."


def _judge(name: str, cases, right: str) -> bool:
    """cases: [(learner's output or None, its sentence, expected, [(wrong output, why)])].

    Prints one sentence and returns whether every case matched its expected output."""
    for got, failure, expected, wrongs in cases:
        if failure:
            print(failure)
            return False
        if got.shape != np.shape(expected):
            print(f"{name} returned shape {got.shape}; expected {np.shape(expected)}.")
            return False
        if not _close(got, expected):
            for wrong, why in wrongs:
                if _close(got, wrong):
                    print(f"Not yet: {why}")
                    return False
            gap = float(np.max(np.abs(got - expected)))
            value = (
                f"gives {float(got):.4f}, not {float(expected):.4f}"
                if got.ndim == 0
                else (f"differs from the answer by up to {gap:.3g}")
            )
            print(f"Not yet: {name} {value}, and matches none of the usual mistakes.")
            return False
    print(f"✓ {right}")
    return True


# ---- lesson 1: the colour affine -------------------------------------------------------------


def color_affine_inputs(seed: int = 0):
    """images (4, 5, 5, 3) in [0, 1], scale (4, 1, 1), mixing (4, 3, 3); some pixels clip."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (4, 5, 5, 3)).astype("float32")
    scale = rng.uniform(0.4, 1.6, (4, 1, 1)).astype("float32")
    mixing = rng.uniform(-0.4, 0.4, (4, 3, 3)).astype("float32")
    return images, scale, mixing


def check_color_affine(fn) -> bool:
    """fn(images (B, H, W, 3), scale (B, 1, 1), mixing (B, 3, 3)) -> pixel @ (s I + J), clipped."""
    images, scale, mixing = color_affine_inputs()
    x = images.astype("float64")
    matrix = scale * np.eye(3) + mixing  # (B, 3, 3)
    raw = np.einsum("bhwc,bcd->bhwd", x, matrix)
    wrongs = [
        (raw, "nothing is clipped: end with np.clip(..., 0, 1), the range of an image."),
        (
            np.clip(np.einsum("bhwc,bdc->bhwd", x, matrix), 0, 1),
            "the matrix is transposed: a pixel is a row, so multiply pixel @ matrix.",
        ),
        (
            np.clip(np.einsum("bhwc,bcd->bhwd", x, scale + mixing), 0, 1),
            "scale is added to every entry of the matrix; it belongs on the diagonal "
            "(scale * np.eye(3) + mixing).",
        ),
        (np.clip(x * scale[..., None], 0, 1), "mixing is left out: add it to the matrix."),
    ]
    got, failure = _call("color_affine", fn, images.copy(), scale, mixing)
    return _judge(
        "color_affine",
        [(got, failure, np.clip(raw, 0, 1), wrongs)],
        "color_affine matches the library's apply_color_affine.",
    )


# ---- lesson 3: NT-Xent -----------------------------------------------------------------------


def nt_xent_inputs(seed: int = 0, n: int = 6, width: int = 4):
    """Two (n, width) float32 arrays of unnormalised projections, rows of different lengths."""
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(n, width)) * rng.uniform(0.5, 3.0, (n, 1))
    z2 = z1 + rng.normal(scale=0.8, size=(n, width))
    return z1.astype("float32"), z2.astype("float32")


def nt_xent_reference(z1, z2, temperature, normalise=True, mask=True, power=1, halves=2):
    """The SimCLR paper's NT-Xent in NumPy, and its usual mistakes by switch.

    z = (z1; z2) rows normalised, (2N, d); logits = z z^T / T^power with the diagonal removed;
    the positive of row i is row i + N (and back); mean cross-entropy over the 2N rows
    (`halves=1`: over the first view's N rows only)."""
    z1, z2 = np.asarray(z1, "float64"), np.asarray(z2, "float64")
    n = len(z1)
    z = np.concatenate([z1, z2])
    if normalise:
        z = _unit(z)
    logits = z @ z.T / temperature**power  # (2N, 2N)
    if mask:
        np.fill_diagonal(logits, -np.inf)
    targets = np.concatenate([np.arange(n) + n, np.arange(n)])
    losses = _log_softmax_ce(logits, targets)
    return losses[: n * halves].mean()


def infonce_reference(z1, z2, temperature):
    """The cross-view block only: (CE(S) + CE(S^T)) / 2 with S = u v^T / T (N - 1 negatives)."""
    u, v = _unit(np.asarray(z1, "float64")), _unit(np.asarray(z2, "float64"))
    s = u @ v.T / temperature
    targets = np.arange(len(u))
    return (_log_softmax_ce(s, targets).mean() + _log_softmax_ce(s.T, targets).mean()) / 2


NT_XENT_MISTAKES = [  # (how `nt_xent_reference` is bent, what to tell the learner)
    ({"normalise": False}, "the projections are not normalised: divide each row by its length."),
    ({"mask": False}, "the diagonal is not masked: set z z^T's diagonal to -inf first."),
    ({"power": 2}, "the temperature is applied twice: divide the similarities by it once."),
    ({"power": 0}, "the temperature is missing: divide the similarities by it."),
    ({"power": -1}, "the similarities are multiplied by the temperature; divide by it."),
    ({"halves": 1}, "only one direction: average over all 2N views, not view 1's N only."),
]


def check_nt_xent(fn) -> bool:
    """fn(z1 (N, d), z2 (N, d), temperature) -> the mean NT-Xent loss over all 2N views."""
    cases = []
    for seed, temperature in ((0, 0.3), (1, 0.1)):
        z1, z2 = nt_xent_inputs(seed)
        right = nt_xent_reference(z1, z2, temperature)
        wrongs = [
            (nt_xent_reference(z1, z2, temperature, **bent), why) for bent, why in NT_XENT_MISTAKES
        ] + [
            (
                infonce_reference(z1, z2, temperature),
                "that is the cross-view InfoNCE (N - 1 "
                "negatives); NT-Xent also counts the same side's other views (2N - 2).",
            ),
            (2 * len(z1) * right, "the losses are summed; take their mean over the 2N views."),
        ]
        got, failure = _call("nt_xent", fn, z1.copy(), z2.copy(), temperature)
        cases.append((got, failure, right, wrongs))
    return _judge(
        "nt_xent", cases, "nt_xent matches the SimCLR paper's NT-Xent at two temperatures."
    )


# ---- lesson 3b: the training step -----------------------------------------------------------


def step_parts(image_size: int = 32, width: int = 32, classes: int = 10):
    """Fixed parts of a pretraining step: encoder, projection head, probe (seeded weights) and
    a function giving a fresh (strong, weak) pair of seeded augmenters: every pair draws the
    same views."""
    keras.utils.set_random_seed(0)
    parts = (
        get_encoder(width, image_size),
        get_projection_head(width, batchnorm=True),
        get_linear_probe(classes),
    )
    return parts, lambda: (
        get_augmenter(0.25, 0.6, 0.2, seed=7),
        get_augmenter(0.75, 0.3, 0.1, seed=9),
    )


def step_inputs(seed: int = 0, image_size: int = 32):
    """((unlabelled (24, S, S, 3), labelled (8, S, S, 3)) uint8, labels (8,)): one fixed batch."""
    rng = np.random.default_rng(seed)
    unlabelled = rng.integers(0, 256, (24, image_size, image_size, 3), dtype="uint8")
    labelled = rng.integers(0, 256, (8, image_size, image_size, 3), dtype="uint8")
    return (unlabelled, labelled), rng.integers(0, 10, 8)


def _step_loss(model, x, y, y_pred=None) -> float:
    """The model's compute_loss on its outputs for x (its first call draws the views)."""
    y_pred = model(x, training=True) if y_pred is None else y_pred
    return float(keras.ops.convert_to_numpy(model.compute_loss(x, y, y_pred, training=True)))


def check_training_step(model_class, temperature: float = 0.2, loss_name="ntxent") -> bool:
    """model_class(encoder, head, probe, strong, weak, temperature): a keras.Model whose call
    returns (z1, z2, probe logits) and whose compute_loss is the contrastive loss `loss_name`
    ("ntxent" or the reference's "infonce") plus the probe's cross-entropy. On one fixed
    batch, with the same weights and views, its loss must equal `ContrastiveModel`'s to 1e-5."""
    (encoder, head, probe), augmenters = step_parts()
    x, y = step_inputs()
    library = ContrastiveModel(encoder, head, probe, *augmenters(), temperature, loss=loss_name)
    outputs = library(x, training=True)
    z1, z2, logits = outputs["projections_1"], outputs["projections_2"], outputs["probe_logits"]
    p_loss = float(keras.ops.mean(keras.ops.sparse_categorical_crossentropy(y, logits, True)))
    expected = _step_loss(library, x, y, outputs)
    other = {"ntxent": "infonce", "infonce": "ntxent"}[loss_name]
    names = {"ntxent": "NT-Xent (2N - 2 negatives)", "infonce": "InfoNCE (N - 1 negatives)"}
    contrastive = loss.get_loss(loss_name)
    wrongs = [
        (expected - p_loss, "the probe's cross-entropy is missing from the loss: add it."),
        (
            float(loss.get_loss(other)(z1, z2, temperature)[0]) + p_loss,
            f"that is {names[other]}; this step uses {names[loss_name]}.",
        ),
        (float(contrastive(z1, z2, 1.0)[0]) + p_loss, "the temperature is missing."),
        (float(contrastive(z1, z2, temperature**2)[0]) + p_loss, "temperature applied twice."),
    ]
    try:
        learner = model_class(encoder, head, probe, *augmenters(), temperature)
        got = _step_loss(learner, x, y)
    except NotWritten as stub:
        print(f"your step is not written yet: {_said(stub)}")
        return False
    except Exception as error:  # the learner's bug, named in one line
        print(f"Your model raised {type(error).__name__}: {_said(error)}")
        return False
    right = (
        f"your step's loss {got:.4f} equals ContrastiveModel's {expected:.4f} to within "
        f"{TOLERANCE:g} on the same batch, weights and views."
    )
    return _judge("your step's loss", [(np.asarray(got), None, expected, wrongs)], right)


# ---- lesson 4: kNN on frozen features --------------------------------------------------------


def knn_inputs(seed: int = 0):
    """40 training features (d = 5) of 3 classes, scaled by 0.3-1.5; labels; 12 test features."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 5))
    labels = rng.integers(0, 3, 40)
    train = (centres[labels] + rng.normal(scale=1.2, size=(40, 5))) * rng.uniform(
        0.3, 1.5, (40, 1)
    )
    test = centres[rng.integers(0, 3, 12)] + rng.normal(scale=1.2, size=(12, 5))
    return train.astype("float32"), labels, test.astype("float32")


def _knn_variant(train, labels, test, k, tau, normalise=True, weighted=True, farthest=False):
    a = _unit(train) if normalise else train
    b = _unit(test) if normalise else test
    sims = b @ a.T  # (M, N)
    order = np.argsort(sims if farthest else -sims, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(test), int(labels.max()) + 1))
    top = np.take_along_axis(sims, order, 1)
    weights = np.exp((top - top.max(axis=1, keepdims=True)) / tau) if weighted else 1.0
    np.add.at(votes, (np.arange(len(test))[:, None], labels[order]), weights)
    return votes.argmax(axis=1)


def check_knn(fn) -> bool:
    """fn(train (N, d), train_labels (N,), test (M, d), k, tau) -> predicted labels (M,):
    the k training features most cosine-similar to each test feature vote for their class
    with weight exp(similarity / tau), as `evaluate.knn_predict`."""
    train, labels, test = knn_inputs()
    cases = []
    for k, tau in ((7, 0.1), (15, 0.5)):
        expected = evaluate.knn_predict(train, labels, test, k, tau)
        wrongs = [
            (
                _knn_variant(train, labels, test, k, tau, normalise=False),
                "the features are not normalised: compare directions (cosine similarity), "
                "or long feature vectors win every vote.",
            ),
            (
                _knn_variant(train, labels, test, k, tau, farthest=True),
                "these are the k least similar training features: sort similarities from "
                "the largest.",
            ),
            (
                _knn_variant(train, labels, test, k, tau, weighted=False),
                "every neighbour has one vote; weight each by exp(similarity / tau).",
            ),
        ]
        got, failure = _call("knn", fn, train.copy(), labels.copy(), test.copy(), k, tau)
        cases.append((got, failure, expected, wrongs))
    return _judge("knn", cases, "knn predicts the same labels as evaluate.knn_predict.")


# ---- lesson 7: alignment and uniformity ------------------------------------------------------


def embedding_inputs(seed: int = 0, n: int = 10, width: int = 4):
    """Two views' embeddings (n, width), unnormalised, rows of different lengths."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, width)) * rng.uniform(0.3, 3.0, (n, 1))
    v = u + rng.normal(scale=0.7, size=(n, width))
    return u.astype("float32"), v.astype("float32")


def check_alignment(fn) -> bool:
    """fn(u (N, d), v (N, d)) -> mean over the N pairs of ||u_i - v_i||^2, rows normalised."""
    u, v = embedding_inputs()
    a, b = _unit(u.astype("float64")), _unit(v.astype("float64"))
    distances = np.linalg.norm(a - b, axis=1)
    raw = np.linalg.norm(u.astype("float64") - v, axis=1)
    wrongs = [
        (np.mean(raw**2), "the rows are not normalised: divide each by its length first."),
        (np.mean(distances), "the distances are not squared: alignment uses ||u - v||^2."),
        (np.sum(distances**2), "summed over the pairs; take the mean."),
    ]
    got, failure = _call("alignment", fn, u.copy(), v.copy())
    return _judge(
        "alignment",
        [(got, failure, np.mean(distances**2), wrongs)],
        "alignment matches diagnostics.alignment.",
    )


def check_uniformity(fn) -> bool:
    """fn(u (N, d)) -> log mean over pairs i < j of exp(-2 ||u_i - u_j||^2), rows normalised."""
    u, _ = embedding_inputs(1)
    a = _unit(u.astype("float64"))
    squared = np.maximum(2 - 2 * a @ a.T, 0)
    pairs = squared[np.triu_indices(len(a), 1)]
    raw = u.astype("float64")
    raw_squared = np.sum((raw[:, None] - raw[None]) ** 2, axis=-1)[np.triu_indices(len(a), 1)]
    wrongs = [
        (
            np.log(np.mean(np.exp(-2 * raw_squared))),
            "the rows are not normalised: divide each by its length first.",
        ),
        (
            np.log(np.mean(np.exp(-2 * squared))),
            "the N pairs of a row with itself are "
            "counted (distance 0); take the distinct pairs i < j.",
        ),
        (np.mean(np.exp(-2 * pairs)), "the log is missing: uniformity is the log of the mean."),
        (np.log(np.mean(np.exp(-2 * np.sqrt(pairs)))), "the distances are not squared."),
        (np.log(np.mean(np.exp(2 * pairs))), "the exponent's sign: exp(-2 ||u_i - u_j||^2)."),
    ]
    got, failure = _call("uniformity", fn, u.copy())
    expected = diagnostics.uniformity(u)
    return _judge(
        "uniformity",
        [(got, failure, expected, wrongs)],
        "uniformity matches diagnostics.uniformity.",
    )
