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


def plot_history(history: dict, keys=None, title="Training history"):
    """Chosen keys of one history (default: all) on one axis per key."""
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
        ax.set_xlabel("epoch")
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


def plot_label_sweep(summary: list[dict], supervised: list[dict] | None = None):
    """Test accuracy vs labels per class (log x), mean with a min-max band over label draws.

    Left: kNN on frozen features; right: the linear probe on frozen features beside the
    models trained end to end. summary: rows of `simclr_lab.sweep.summarise`; supervised:
    rows of `simclr_lab.sweep.summarise_supervised` (last-epoch accuracy), drawn on the
    right only, with error bars from the lowest to the highest draw.
    """
    if not summary:
        raise ValueError("summary is empty: run the sweep first.")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    names = list(dict.fromkeys(e["features"] for e in summary))
    panels = (("knn_acc", "kNN on frozen features"), ("linear_probe_acc", "linear probe"))
    for ax, (metric, title) in zip(axes, panels):
        for name in names:
            rows = sorted(
                (e for e in summary if e["features"] == name), key=lambda e: e["per_class"]
            )
            x = [e["per_class"] for e in rows]
            ax.plot(x, [e[metric] * 100 for e in rows], marker="o", label=f"{name}, frozen")
            ax.fill_between(
                x,
                [e[metric + "_min"] * 100 for e in rows],
                [e[metric + "_max"] * 100 for e in rows],
                alpha=0.2,
            )
        ax.set_xscale("log")
        ax.set_xlabel("labels per class")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    models = list(dict.fromkeys(e["model"] for e in supervised or ()))
    for name, style in zip(models, ("k--", "C3-")):
        rows = sorted((e for e in supervised if e["model"] == name), key=lambda e: e["per_class"])
        mean = np.array([e["final_acc"] for e in rows]) * 100
        low_high = np.array([(e["final_acc_min"], e["final_acc_max"]) for e in rows]).T * 100
        axes[1].errorbar(
            [e["per_class"] for e in rows],
            mean,
            yerr=np.abs(low_high - mean),
            fmt=style,
            marker="s",
            capsize=3,
            label=f"{name} (trained end to end)",
        )
    if models:
        axes[1].set_title("linear probe vs models trained end to end")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pretraining_gains(settings: list[dict]):
    """Supervised baseline vs pretrained model, one group of bars per setting.

    settings: [{"setting": label, "baseline": accuracy, "pretrained": accuracy, and optional
    "baseline_spread" / "pretrained_spread": (low, high)}], accuracies in [0, 1]; each group
    is annotated with the gain in points, so a learner sees where pretraining pays.
    """
    if not settings:
        raise ValueError("settings is empty: pass at least one measured setting.")
    fig, ax = plt.subplots(figsize=(max(6, 2.4 * len(settings)), 4.6))
    x = np.arange(len(settings))
    for offset, key, label in (
        (-0.2, "baseline", "supervised baseline"),
        (0.2, "pretrained", "SimCLR, then finetuned"),
    ):
        values = np.array([s[key] for s in settings]) * 100
        low_high = np.array([s.get(f"{key}_spread") or (s[key], s[key]) for s in settings])
        errors = np.abs(low_high.T * 100 - values)  # (2, settings): below, above
        ax.bar(x + offset, values, width=0.4, label=label, yerr=errors, capsize=3)
    for i, s in enumerate(settings):
        gain = (s["pretrained"] - s["baseline"]) * 100
        top = max(s["pretrained"], s["baseline"]) * 100
        ax.annotate(
            f"{gain:+.1f}",
            (i, top + 2),
            ha="center",
            fontweight="bold",
            color="tab:green" if gain >= 2 else "tab:gray",
        )
    ax.set_xticks(x, [s["setting"] for s in settings], fontsize=8)
    ax.set_ylabel("accuracy on held-out images (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Where pretraining pays: gain of the pretrained model in points")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


STUDY_PRESET_VALUES = {"temperature": 0.2, "min_area": 0.25, "colour": 1.0, "grayscale": 0.2}
STUDY_X_LABELS = {
    "temperature": "temperature (log scale)",
    "min_area": "min_area: smallest crop kept (1 = no crop)",
    "colour": "colour strength (x the preset's brightness and jitter)",
    "grayscale": "chance of a grey view",
}


def plot_study(summary: list[dict], knobs=("temperature",)):
    """One row per knob: contrastive accuracy (left) and frozen-feature accuracy (right)
    against the knob's value, mean with min-max bars over seeds; the `cpu` preset's value
    dotted. summary: rows of `simclr_lab.study.summarise`; rows whose source is "yours"
    (a learner's own runs) are drawn as hollow markers beside the shipped ones."""
    if not summary:
        raise ValueError("summary is empty: no study rows to draw.")
    missing = [k for k in knobs if not any(e["knob"] == k for e in summary)]
    if missing:
        raise ValueError(
            f"no study rows for {missing}; the rows hold {sorted({e['knob'] for e in summary})}."
        )
    fig, axes = plt.subplots(len(knobs), 2, figsize=(11, 3.6 * len(knobs)), squeeze=False)
    panels = (
        (("c_acc", "training batches"), ("val_c_acc", "held-out images")),
        (
            ("knn_10", "kNN, 10 labels/class"),
            ("probe_10", "probe, 10 labels/class"),
            ("knn_100", "kNN, 100 labels/class"),
            ("probe_100", "probe, 100 labels/class"),
        ),
    )
    titles = ("contrastive accuracy (the pretext task)", "frozen features (what a learner keeps)")
    for row, knob in enumerate(knobs):
        for column, (metrics, title) in enumerate(zip(panels, titles)):
            ax = axes[row][column]
            for index, (metric, label) in enumerate(metrics):
                colour = f"C{index}"
                for source, style in (("shipped", "-o"), ("yours", "D")):
                    rows = sorted(
                        (e for e in summary if e["knob"] == knob and e["source"] == source),
                        key=lambda e: e["value"],
                    )
                    if not rows:
                        continue
                    x = np.array([e["value"] for e in rows])
                    mean = np.array([e[metric] for e in rows]) * 100
                    spread = np.array([(e[metric + "_min"], e[metric + "_max"]) for e in rows]).T
                    ax.errorbar(
                        x,
                        mean,
                        yerr=np.abs(spread * 100 - mean),
                        fmt=style,
                        color=colour,
                        mfc="none" if source == "yours" else colour,
                        capsize=3,
                        label=label if source == "shipped" else f"{label} (yours)",
                    )
            ax.axvline(STUDY_PRESET_VALUES[knob], color="gray", linestyle=":", label="cpu preset")
            if knob == "temperature":
                ax.set_xscale("log")
                ax.minorticks_off()
            values = sorted({e["value"] for e in summary if e["knob"] == knob})
            ax.set_xticks(values, [f"{v:g}" for v in values])  # the values studied
            ax.set_xlabel(STUDY_X_LABELS[knob])
            ax.set_ylabel("accuracy (%)")
            ax.set_title(f"{knob}: {title}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_pretraining_curve(rows: list[dict]):
    """Accuracy against pretraining epochs (log scale): the frozen encoder's linear probe and
    kNN, and the finetuned model (last epoch), with the baselines as horizontal lines.
    rows: `simclr_lab.study.load_curve()` ("pretrained" and "baseline" rows)."""
    points = sorted(
        (r for r in rows if r["model"] == "pretrained"), key=lambda r: r["pretraining_epochs"]
    )
    if not points:
        raise ValueError("no 'pretrained' rows: nothing to draw against pretraining epochs.")
    x = [r["pretraining_epochs"] for r in points]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for key, label, style in (
        ("final_acc", "finetuned (60 supervised epochs, last epoch)", "-o"),
        ("linear_probe_acc", "frozen: linear probe", "-s"),
        ("knn_acc", "frozen: kNN", "-^"),
    ):
        ax.plot(x, [r[key] * 100 for r in points], style, label=label)
        for epochs, row in zip(x, points):
            ax.annotate(
                f"{row[key] * 100:.1f}",
                (epochs, row[key] * 100),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
    baselines = sorted(
        (r for r in rows if r["model"] == "baseline"), key=lambda r: r["supervised_epochs"]
    )
    for index, row in enumerate(baselines):
        ax.axhline(
            row["final_acc"] * 100,
            color="gray",
            linestyle=(":", "--")[index % 2],
            label=f"baseline, {row['supervised_epochs']} epochs: {row['final_acc'] * 100:.1f}%",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(e) for e in x])
    ax.set_xlabel("pretraining epochs (each a whole run with its own schedule)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("What more pretraining buys", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
