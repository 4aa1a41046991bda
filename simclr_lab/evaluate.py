"""Label-based measures of frozen features: kNN accuracy and the linear probe.

Both encode the images once with the frozen encoder and then work on the cached features,
as the self-supervised literature reports them beside the online probe.
"""

from __future__ import annotations

import keras
import numpy as np

from simclr_lab.encoder import get_encoder


def accuracy_key(history: dict) -> str:
    """The history's validation accuracy: "val_p_acc" (pretraining's online probe) if it has
    one, else "val_acc" (a classifier); a ValueError naming the keys it has otherwise."""
    for key in ("val_p_acc", "val_acc"):
        if key in history:
            return key
    raise ValueError(f"history has no val_p_acc or val_acc; it has {sorted(history)}.")


def loss_key(history: dict) -> str:
    """The validation loss beside `accuracy_key`: "val_p_loss" or "val_loss"."""
    key = accuracy_key(history).replace("_acc", "_loss")
    if key not in history:
        raise ValueError(f"history has no {key}; it has {sorted(history)}.")
    return key


def encode(encoder, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Frozen features of uint8 images (N, H, W, 3) -> float32 (N, width), batch by batch
    (256 images hold the activations to about 70 MB at 32x32; 1024 took 330 MB for 10%
    less time)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3); got {images.shape}.")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in 0..255; got dtype {images.dtype}.")
    if len(images) == 0:
        raise ValueError("images is empty: there is nothing to encode.")
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype("float32") / 255.0
        chunks.append(keras.ops.convert_to_numpy(encoder(batch, training=False)))
    return np.concatenate(chunks).astype("float32")


def _check_features(name, features, labels, convert=True):
    """(features, labels as int64), checked; features float32 unless `convert` is False
    (large uint8 features, such as raw pixels, are then converted a batch at a time)."""
    features = np.asarray(features, dtype="float32" if convert else None)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(
            f"{name} features must be a non-empty (N, D) array; got {features.shape}."
        )
    if len(labels) != len(features):
        raise ValueError(
            f"{name}: {len(features)} feature rows but {len(labels)} labels; they must match."
        )
    return features, labels.astype("int64")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_predict(
    train_features,
    train_labels,
    test_features,
    k: int = 200,
    tau: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Weighted kNN (Wu et al. 2018) on cosine similarity: predicted labels (M,).

    Each of the k most similar training features votes for its class with weight
    exp(similarity / tau). Works through the test set `batch_size` rows at a time, so memory
    stays (batch_size, N) however large N and M are.
    """
    train, train_y = _check_features("train", train_features, train_labels)
    test = np.asarray(test_features)  # made float32 and unit length a batch at a time
    if test.ndim != 2 or len(test) == 0:
        raise ValueError(f"test features must be a non-empty (M, D) array; got {test.shape}.")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(train):
        raise ValueError(
            f"k={k!r} must be an integer from 1 to the {len(train)} training samples."
        )
    if tau <= 0:
        raise ValueError(f"tau={tau!r} must be > 0.")
    classes = num_classes or int(train_y.max()) + 1
    train = _unit_rows(train)
    predictions = np.empty(len(test), dtype="int64")
    for start in range(0, len(test), batch_size):
        batch = _unit_rows(test[start : start + batch_size].astype("float32"))
        sims = batch @ train.T  # (B, N)
        if k < len(train):
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (B, k), any order
        else:
            top = np.broadcast_to(np.arange(len(train)), sims.shape)
        top_sims = np.take_along_axis(sims, top, axis=1)
        weights = np.exp(top_sims / tau)  # (B, k)
        votes = np.zeros((len(sims), classes))
        np.add.at(votes, (np.arange(len(sims))[:, None], train_y[top]), weights)
        predictions[start : start + len(sims)] = votes.argmax(axis=1)
    return predictions


def knn_accuracy(
    train_features, train_labels, test_features, test_labels, k=200, tau=0.07, batch_size=512
) -> float:
    """Share of test features whose weighted-kNN class (see `knn_predict`) is right."""
    test, test_y = _check_features("test", test_features, test_labels, convert=False)
    classes = int(max(np.max(train_labels), test_y.max())) + 1
    predicted = knn_predict(train_features, train_labels, test, k, tau, classes, batch_size)
    return float(np.mean(predicted == test_y))


def linear_probe_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    regularisation: float = 1.0,
    seed: int = 0,
) -> float:
    """Test accuracy of logistic regression fitted on frozen (standardised) features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, train_y = _check_features("train", train_features, train_labels)
    test, test_y = _check_features("test", test_features, test_labels, convert=False)
    if len(np.unique(train_y)) < 2:
        raise ValueError("The linear probe needs labels of at least two classes.")
    probe = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=regularisation, max_iter=2000, random_state=seed),
    )
    probe.fit(train, train_y)
    correct = sum(  # scored a batch at a time: raw pixels need no float copy of the test set
        int(np.sum(probe.predict(test[i : i + 1024].astype("float32")) == test_y[i : i + 1024]))
        for i in range(0, len(test), 1024)
    )
    return correct / len(test)


def feature_scores(train, train_labels, test, test_labels, k: int = 200) -> dict:
    """{"knn_acc", "linear_probe_acc"} of features fitted on train, measured on test."""
    k = min(k, len(train))
    return {
        "knn_acc": knn_accuracy(train, train_labels, test, test_labels, k=k),
        "linear_probe_acc": linear_probe_accuracy(train, train_labels, test, test_labels),
    }


def frozen_scores(encoder, splits, k: int = 200) -> dict:
    """kNN and linear probe of `encoder`'s features: labelled split -> test split."""
    train, test = encode(encoder, splits.labelled_images), encode(encoder, splits.test_images)
    return feature_scores(train, splits.labelled_labels, test, splits.test_labels, k)


def raw_pixels(images: np.ndarray) -> np.ndarray:
    """Images (N, H, W, 3) as features (N, H * W * 3), kept uint8 until a measure uses them."""
    return images.reshape(len(images), -1)


def pixel_scores(splits, k: int = 200) -> dict:
    """The same two measures on raw pixels: the baseline that features must beat."""
    train, test = raw_pixels(splits.labelled_images), raw_pixels(splits.test_images)
    return feature_scores(train, splits.labelled_labels, test, splits.test_labels, k)


def comparison_encoders(encoder, width: int, image_size: int, seed: int) -> dict:
    """{"simclr encoder", "random encoder", "raw pixels"}: functions from uint8 images
    (N, H, W, 3) to features (N, D), as `plots.plot_retrieval` takes them.

    The random encoder is `get_encoder(width, image_size)` built right after
    `keras.utils.set_random_seed(seed)`; `encoder=None` leaves out "simclr encoder".
    """
    keras.utils.set_random_seed(seed)
    random_encoder = get_encoder(width, image_size)
    found = {} if encoder is None else {"simclr encoder": lambda x: encode(encoder, x)}
    return {
        **found,
        "random encoder": lambda x: encode(random_encoder, x),
        "raw pixels": raw_pixels,
    }


def frozen_feature_comparison(encoder, splits, width: int, seed: int, k: int = 200) -> dict:
    """{name: {"knn_acc", "linear_probe_acc"}} for each of `comparison_encoders`: the SimCLR
    encoder, a random encoder of the same width and raw pixels, labelled split -> test split."""
    scores = {}
    for name, features in comparison_encoders(encoder, width, splits.image_shape[0], seed).items():
        train, test = features(splits.labelled_images), features(splits.test_images)
        scores[name] = feature_scores(train, splits.labelled_labels, test, splits.test_labels, k)
    return scores


class KNNMonitor(keras.callbacks.Callback):
    """Adds `val_knn_acc` (kNN of the model's encoder, labelled -> test) every `every` epochs."""

    def __init__(self, splits, every: int = 1, k: int = 200, encoder_attribute="encoder"):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} must be a positive integer.")
        self.splits, self.every, self.k, self.attribute = splits, every, k, encoder_attribute
        self.last = float("nan")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            encoder = getattr(self.model, self.attribute)
            train = encode(encoder, self.splits.labelled_images)
            test = encode(encoder, self.splits.test_images)
            self.last = knn_accuracy(
                train,
                self.splits.labelled_labels,
                test,
                self.splits.test_labels,
                k=min(self.k, len(train)),
            )
        if logs is not None:
            logs["val_knn_acc"] = self.last


def summarise_over_seeds(rows: list[dict], keys: tuple, metrics: tuple) -> list[dict]:
    """Rows grouped by the values of `keys` (in first-seen order): per group its `keys`,
    "seeds" (how many rows) and, for every metric, the mean, `<metric>_min` and `_max`."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    summary = []
    for values, group in groups.items():
        entry = {**dict(zip(keys, values)), "seeds": len(group)}
        for metric in metrics:
            numbers = np.array([r[metric] for r in group], dtype=float)
            entry[metric] = float(numbers.mean())
            entry[f"{metric}_min"] = float(numbers.min())
            entry[f"{metric}_max"] = float(numbers.max())
        summary.append(entry)
    return summary
