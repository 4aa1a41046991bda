"""Collapse diagnostics of embeddings: numbers that tell a collapsed encoder from a slow one.

All four work on L2-normalised embeddings (rows of an (N, D) array):

- alignment (Wang and Isola 2020): mean ||u - u+||^2 over the N pairs of two views' embeddings;
  0 when the views agree, which a collapsed encoder also achieves;
- uniformity (Wang and Isola 2020): log of the mean of exp(-2 ||u - v||^2) over the distinct
  pairs; 0 (its worst) when every embedding is the same, lower when they spread on the sphere;
- std: the standard deviation over the N rows of each dimension, averaged over the D
  dimensions; 0 when collapsed, about 1/sqrt(D) when the embeddings spread over all directions;
- effective rank (Roy and Vetterli 2007): exp of the entropy of the singular values divided
  by their sum; 1 when every embedding is the same, D when all directions are used alike.

The pretext task's ranking measures (as the UvA SimCLR tutorial reports them) come from the
same two views: among the 2N - 1 other views of a batch, the rank of each view's positive
(`positive_ranks`), summarised as top-1, top-5 and mean rank (`ranking`).

`offline_diagnostics` measures any network; `DiagnosticsMonitor` adds them to each pretraining
epoch's logs, measured on a fixed sample of held-out images, so they land in the history, the
live dashboard and `compare`'s metrics.json.
"""

from __future__ import annotations

import time

import keras
import numpy as np

# Names in a history: on held-out ("val_") images, as the other validation metrics.
LOG_NAMES = {
    "alignment": "val_alignment",
    "uniformity": "val_uniformity",
    "std": "val_emb_std",
    "rank": "val_eff_rank",
}


def _embeddings(name: str, embeddings) -> np.ndarray:
    array = np.asarray(embeddings, dtype="float64")
    if array.ndim != 2 or len(array) == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array; got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite values.")
    return array


def normalise_rows(embeddings) -> np.ndarray:
    """(N, D) -> (N, D) rows divided by their L2 norm (a zero row stays zero)."""
    array = _embeddings("embeddings", embeddings)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def alignment(embeddings_1, embeddings_2, alpha: float = 2.0) -> float:
    """Mean ||u_i - v_i||^alpha of two views' normalised rows (N, D), (N, D): 0 to 2^alpha."""
    u, v = normalise_rows(embeddings_1), normalise_rows(embeddings_2)
    if u.shape != v.shape:
        raise ValueError(f"the two views' embeddings differ in shape: {u.shape} and {v.shape}.")
    return float(np.mean(np.linalg.norm(u - v, axis=1) ** alpha))


def uniformity(embeddings, t: float = 2.0) -> float:
    """log mean over pairs i < j of exp(-t ||u_i - u_j||^2), rows normalised; (N >= 2, D).

    From -4t (two antipodal points) up to 0, the value when all embeddings are equal.
    """
    u = normalise_rows(embeddings)
    if len(u) < 2:
        raise ValueError(f"uniformity needs at least 2 embeddings; got {len(u)}.")
    squared = np.maximum(2.0 - 2.0 * (u @ u.T), 0.0)  # (N, N): ||u_i - u_j||^2 on the sphere
    pairs = squared[np.triu_indices(len(u), k=1)]
    scaled = -t * pairs
    top = scaled.max()  # log-mean-exp, kept finite
    return float(top + np.log(np.mean(np.exp(scaled - top))))


def embedding_std(embeddings) -> float:
    """Mean over the D dimensions of the std over the N normalised rows (N, D).

    0 when collapsed; about 1/sqrt(D) when the rows spread over every direction.
    """
    return float(np.mean(np.std(normalise_rows(embeddings), axis=0)))


def effective_rank(embeddings) -> float:
    """exp(entropy of s / sum(s)) of the normalised rows' singular values s: 1 to min(N, D)."""
    singular = np.linalg.svd(normalise_rows(embeddings), compute_uv=False)
    share = singular / singular.sum()
    share = share[share > 0]
    return float(np.exp(-np.sum(share * np.log(share))))


def diagnose(embeddings, view_1, view_2) -> dict:
    """{"alignment", "uniformity", "std", "rank"}: alignment from two views' embeddings
    (N, D) each, the rest from the plain images' embeddings (M, D)."""
    return {
        "alignment": alignment(view_1, view_2),
        "uniformity": uniformity(embeddings),
        "std": embedding_std(embeddings),
        "rank": effective_rank(embeddings),
    }


def positive_ranks(view_1, view_2) -> np.ndarray:
    """(N, D), (N, D) -> (2N,) rank of each view's positive among the 2N - 1 other views,
    by cosine similarity: 1 when the positive is the nearest (ties counted against it)."""
    u, v = normalise_rows(view_1), normalise_rows(view_2)
    if u.shape != v.shape or len(u) < 2:
        raise ValueError(f"need two views of the same N >= 2 rows; got {u.shape} and {v.shape}.")
    z = np.concatenate([u, v])  # (2N, D)
    similarities = z @ z.T
    np.fill_diagonal(similarities, -np.inf)  # a view is not its own candidate
    n = len(u)
    positive = similarities[np.arange(2 * n), np.concatenate([np.arange(n) + n, np.arange(n)])]
    return np.sum(similarities >= positive[:, None], axis=1)  # the positive itself counts 1


def ranking(view_1, view_2) -> dict:
    """{"top1", "top5", "mean_rank"} of `positive_ranks`: shares in [0, 1], a rank >= 1.

    Chance, for N pairs: top-1 1 / (2N - 1), mean rank N."""
    ranks = positive_ranks(view_1, view_2)
    return {
        "top1": float(np.mean(ranks == 1)),
        "top5": float(np.mean(ranks <= 5)),
        "mean_rank": float(np.mean(ranks)),
    }


def embed_views(network, views, batch_size: int = 1024) -> np.ndarray:
    """`network`'s outputs (N, D) for float inputs (N, ...) (views in [0, 1] for an encoder),
    batch by batch, in inference mode."""
    chunks = [
        keras.ops.convert_to_numpy(network(views[start : start + batch_size], training=False))
        for start in range(0, len(views), batch_size)
    ]
    return np.concatenate(chunks).astype("float32")


def draw_views(augmenter, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """A random view (N, H, W, 3) float in [0, 1] of each uint8 image (N, H, W, 3)."""
    chunks = [
        keras.ops.convert_to_numpy(augmenter(images[start : start + batch_size], training=True))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks).astype("float32")


def held_out_sample(images: np.ndarray, size: int = 512) -> np.ndarray:
    """The first `size` held-out uint8 images (N, H, W, 3), all of them when there are fewer."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ValueError(f"size={size!r} must be an integer >= 2.")
    sample = np.asarray(images)[:size]
    if sample.ndim != 4 or sample.dtype != np.uint8 or len(sample) < 2:
        raise ValueError(
            f"images must be at least 2 uint8 images (N, H, W, 3); got {sample.dtype} "
            f"{sample.shape}."
        )
    return sample


def offline_diagnostics(network, augmenter, images: np.ndarray, size: int = 512) -> dict:
    """`diagnose` of any network's embeddings (an encoder, or encoder then projection head):
    the first `size` uint8 images (N, H, W, 3) and two views of each drawn by `augmenter`."""
    sample = held_out_sample(images, size)
    views = [embed_views(network, draw_views(augmenter, sample)) for _ in range(2)]
    return diagnose(embed_views(network, sample.astype("float32") / 255.0), *views)


SPACES = ("projections", "features")


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"Unknown space={space!r}; allowed: {', '.join(map(repr, SPACES))}.")


def embed_model(model, inputs: np.ndarray, space: str = "projections") -> np.ndarray:
    """A `ContrastiveModel`'s embeddings (N, width) of float images (N, H, W, 3) in [0, 1]:
    its encoder's features, or ("projections") those through its projection head."""
    _check_space(space)
    features = embed_views(model.encoder, inputs)
    return features if space == "features" else embed_views(model.projection_head, features)


def model_diagnostics(model, images: np.ndarray, size: int = 512, space="projections") -> dict:
    """`diagnose` of a `ContrastiveModel` (e.g. one loaded from the cache) on the first `size`
    uint8 images (N, H, W, 3) and two views of each from its contrastive augmenter."""
    _check_space(space)
    sample = held_out_sample(images, size)
    views = [draw_views(model.contrastive_augmenter, sample) for _ in range(2)]
    view_1, view_2 = (embed_model(model, view, space) for view in views)
    plain = embed_model(model, sample.astype("float32") / 255.0, space)
    return diagnose(plain, view_1, view_2)


def model_ranking(model, images: np.ndarray, size: int = 512) -> dict:
    """`ranking` of a `ContrastiveModel`'s projections of two views of the first `size` uint8
    images (N, H, W, 3), drawn by its contrastive augmenter."""
    sample = held_out_sample(images, size)
    views = [draw_views(model.contrastive_augmenter, sample) for _ in range(2)]
    return ranking(*(embed_model(model, view) for view in views))


class DiagnosticsMonitor(keras.callbacks.Callback):
    """Adds `LOG_NAMES`' diagnostics to every epoch's logs, for a `ContrastiveModel`.

    space: "projections" (the projection head's outputs: where the loss acts, and where
    collapse shows first, as in SimSiam's paper) or "features" (the encoder's, which kNN and
    the probe use). Measured on the first `size` held-out uint8 images (N, H, W, 3) and two
    views of each, drawn once with the model's contrastive augmenter when training begins,
    so every epoch sees the same views. The training driver resets the augmenter's random
    state when each epoch begins, so drawing them changes no training step.
    """

    def __init__(self, images: np.ndarray, size: int = 512, space: str = "projections"):
        super().__init__()
        _check_space(space)
        self.sample, self.space = held_out_sample(images, size), space
        self.plain = self.sample.astype("float32") / 255.0  # the images as the encoder sees them
        self.views = None
        self.last: dict = {}

    def on_train_begin(self, logs=None):
        augmenter = self.model.contrastive_augmenter
        self.views = [draw_views(augmenter, self.sample) for _ in range(2)]

    def on_epoch_end(self, epoch, logs=None):
        view_1, view_2 = (embed_model(self.model, view, self.space) for view in self.views)
        self.last = diagnose(embed_model(self.model, self.plain, self.space), view_1, view_2)
        if logs is not None:
            logs.update({LOG_NAMES[name]: value for name, value in self.last.items()})


class StepTimer(keras.callbacks.Callback):
    """Adds `step_seconds` to every epoch's logs: the epoch's training time (validation and
    other callbacks' epoch-end work left out) per training step, so it is kept with the run."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps, self.last = time.perf_counter(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self.steps, self.last = self.steps + 1, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.steps:
            logs["step_seconds"] = (self.last - self.start) / self.steps
