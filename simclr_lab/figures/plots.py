"""Figures for the lessons. Every function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from simclr_lab.evaluate import accuracy_key, loss_key

_VALIDATION_KEYS = {"accuracy": accuracy_key, "loss": loss_key}


def save_figure(figure, path) -> None:
    """Write `figure` as a PNG to `path` and close it: a study's figure goes to its file, not
    also to the notebook that ran the study."""
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_training_curves(histories: dict[str, dict], metrics=("accuracy", "loss")):
    """Validation accuracy and loss per epoch of several runs, one panel per metric.

    histories: {run name: history dict}. Each run is drawn through the keys its history has
    (`evaluate.accuracy_key`): pretraining through its online probe (val_p_acc / val_p_loss),
    a classifier through val_acc / val_loss; a history with neither is a ValueError.
    """
    if not histories:
        raise ValueError("histories is empty: pass at least one run's history.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, history in histories.items():
            values = np.asarray(history[_VALIDATION_KEYS[metric](history)])
            values = values * (100 if metric == "accuracy" else 1)
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
        ax.set_xlabel("epoch")
        # Keras names them val_*; the images are the held-out split (test, or validation)
        ax.set_ylabel(f"held-out {metric}" + (" (%)" if metric == "accuracy" else ""))
        ax.set_title(f"Classification {metric} on held-out images, per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_history(history: dict, keys=None, title="Training history", x_label="epoch"):
    """Chosen keys of one history (default: all) on one axis per key, against `x_label`
    (the epoch, or the step where each entry is one step)."""
    keys = list(keys or history)
    if not keys:
        raise ValueError("history has no metrics to plot.")
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(history)}.")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker=".")
        ax.set_title(key)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# The small multiples of `plot_runs_side_by_side`: (history key, panel title).
RUN_PANELS = (
    ("c_loss", "pretext loss (each method's scale)"),
    ("val_c_acc", "contrastive accuracy (held-out)"),
    ("val_emb_std", "std of normalised projections"),
    ("val_eff_rank", "effective rank of projections"),
    ("val_knn_acc", "kNN accuracy (held-out)"),
)


def plot_runs_side_by_side(histories: dict[str, dict], panels=RUN_PANELS, reference=None):
    """Several pretraining runs in one row of small panels, one line per run, per epoch.

    histories: {run name: history dict}; panels: (key, title) pairs, a panel left out when no
    run has its key; reference: {key: value} drawn as a dashed grey line (e.g. the
    1/sqrt(D) of a healthy spread on the std panel).
    """
    if not histories:
        raise ValueError("histories is empty: pass at least one run's history.")
    shown = [(k, t) for k, t in panels if any(k in h for h in histories.values())]
    if not shown:
        raise ValueError(f"no history has any of {[k for k, _ in panels]}.")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.1 * len(shown), 2.9), squeeze=False)
    for ax, (key, title) in zip(axes[0], shown):
        scale = 100 if key.endswith("acc") else 1  # accuracies in percent, as lessons print them
        for name, history in histories.items():
            if key in history:
                values = np.asarray(history[key]) * scale
                ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
        if reference and key in reference:
            line = ax.axhline(
                reference[key], color="grey", linestyle="--", linewidth=1, label="full spread"
            )
            ax.legend(handles=[line], fontsize=7, loc="lower left")
        ax.set_title(title + (" (%)" if scale == 100 else ""), fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_images(rows: dict[str, np.ndarray], columns: int = 8):
    """A grid: one row per name, `columns` images a row; images (N, H, W, 3), [0, 1] or uint8."""
    if not rows:
        raise ValueError("rows is empty: pass at least one named batch of images.")
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(1.3 * columns, 1.4 * len(rows)), squeeze=False
    )
    for r, (name, images) in enumerate(rows.items()):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            images = np.clip(images, 0, 1)
        for c in range(columns):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c])
        axes[r, 0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_embedding(
    features, labels, class_names=None, method="pca", seed=0, title=None, shade=None
):
    """2-D map of features (N, D) coloured by class: PCA, or t-SNE (scikit-learn).

    shade: (name, values (N,)) adds a second panel of the same map coloured by those values
    (e.g. each image's background brightness), to show what else the map follows.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(features) < 3:
        raise ValueError(
            f"features must be (N, D) with N >= 3 and one label each; got {features.shape} "
            f"and {labels.shape}."
        )
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        points = pca.fit_transform(features)
        share = pca.explained_variance_ratio_ * 100
        axes_names = [f"principal component {i + 1} ({share[i]:.0f}% of variance)" for i in (0, 1)]
    elif method == "tsne":
        perplexity = min(30.0, (len(features) - 1) / 3)
        points = TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(
            features
        )
        axes_names = ["t-SNE 1 (only neighbourhoods mean anything)", "t-SNE 2"]
    else:
        raise ValueError(f"Unknown method={method!r}; allowed: 'pca', 'tsne'.")
    panels = 1 if shade is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels + 0.5 * (panels - 1), 5))
    axes = np.atleast_1d(axes)
    for c in np.unique(labels):
        name = class_names[c] if class_names is not None else str(c)
        axes[0].scatter(*points[labels == c].T, s=6, alpha=0.7, label=name)
    axes[0].set_title(title or f"Test features ({method.upper()})", fontsize=10)
    axes[0].legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    if shade is not None:
        shade_name, values = shade
        dots = axes[1].scatter(*points.T, c=np.asarray(values), s=6, cmap="viridis")
        fig.colorbar(dots, ax=axes[1], shrink=0.8).set_label(shade_name, fontsize=8)
        axes[1].set_title(f"The same map, coloured by {shade_name}", fontsize=10)
    for ax in axes:
        ax.set_xlabel(axes_names[0], fontsize=8)
        ax.set_ylabel(axes_names[1], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_retrieval(query_images, gallery_images, encoders: dict, queries=5, k=6):
    """For each encoder, queries and their k nearest gallery images by cosine similarity.

    encoders: {name: function from uint8 images (N, H, W, 3) to features (N, D)}.
    """
    if k < 1 or k > len(gallery_images):
        raise ValueError(f"k={k} must be in [1, {len(gallery_images)}] (the gallery size).")
    queries = min(queries, len(query_images))
    fig, axes = plt.subplots(
        queries * len(encoders),
        k + 1,
        figsize=(1.2 * (k + 1), 1.25 * queries * len(encoders)),
        squeeze=False,
    )
    for block, (name, encode) in enumerate(encoders.items()):
        q = encode(query_images[:queries])
        g = encode(gallery_images)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        nearest = np.argsort(-(q @ g.T), axis=1)[:, :k]  # (queries, k)
        for i in range(queries):
            row = axes[block * queries + i]
            row[0].imshow(query_images[i])
            row[0].set_title(f"{name}: query" if i == 0 else "", fontsize=8, loc="left")
            for j, index in enumerate(nearest[i]):
                row[j + 1].imshow(gallery_images[index])
                if i == 0:
                    row[j + 1].set_title(f"neighbour {j + 1}", fontsize=7)
            for ax in row:
                ax.axis("off")
    fig.tight_layout()
    return fig


def nearest_neighbours(features, queries, k: int) -> np.ndarray:
    """Indices (Q, k) of the k rows of `features` (N, D) most cosine-similar to each query row
    index in `queries` (Q,), the query itself left out."""
    features = np.asarray(features, dtype="float32")
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    similarities = unit[queries] @ unit.T  # (Q, N)
    similarities[np.arange(len(queries)), queries] = -np.inf
    return np.argsort(-similarities, axis=1, kind="stable")[:, :k]


def plot_neighbours(images, features, queries=6, k=6, seed=0, labels=None, class_names=None):
    """A gallery: a column of query images, each followed by its k nearest neighbours among
    all `images` (N, H, W, 3) by cosine similarity of their `features` (N, D).

    queries: how many, drawn with `seed`, or an array of image indices. With labels (N,) and
    class_names each image is captioned with its class.
    """
    images, features = np.asarray(images), np.asarray(features)
    if len(images) != len(features) or len(images) < 2:
        raise ValueError(
            f"need one feature row per image and at least 2 images; got {len(images)} images "
            f"and {len(features)} feature rows."
        )
    if not 1 <= k < len(images):
        raise ValueError(f"k={k} must be from 1 to {len(images) - 1} (the other images).")
    if np.ndim(queries) == 0:
        count = min(int(queries), len(images))
        queries = np.random.default_rng(seed).choice(len(images), count, replace=False)
    queries = np.asarray(queries)
    nearest = nearest_neighbours(features, queries, k)
    fig, axes = plt.subplots(
        len(queries), k + 1, figsize=(1.2 * (k + 1), 1.3 * len(queries)), squeeze=False
    )
    for row, (query, found) in enumerate(zip(queries, nearest)):
        for column, index in enumerate([query, *found]):
            ax = axes[row, column]
            ax.imshow(images[index])
            ax.set_xticks([])
            ax.set_yticks([])
            if labels is not None:
                ax.set_xlabel(class_names[labels[index]], fontsize=6)
        for spine in axes[row, 0].spines.values():
            spine.set(color="tab:red", linewidth=2)
    axes[0, 0].set_title("query", fontsize=9, color="tab:red")
    for column in range(1, k + 1):
        axes[0, column].set_title(f"neighbour {column}", fontsize=7)
    fig.suptitle("Nearest neighbours in the encoder's feature space (cosine)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_similarity_matrix(similarities, title="Similarities of two views (rows: view 1)"):
    """Heatmap of an (N, N) similarity matrix; the positives are on the diagonal."""
    similarities = np.asarray(similarities)
    if similarities.ndim != 2 or similarities.shape[0] != similarities.shape[1]:
        raise ValueError(f"similarities must be square (N, N); got {similarities.shape}.")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    image = ax.imshow(similarities, cmap="viridis")
    fig.colorbar(image, ax=ax)
    ax.set_xlabel("view 2")
    ax.set_ylabel("view 1")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
