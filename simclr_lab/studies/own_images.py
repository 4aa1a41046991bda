"""Pretraining on a folder of one's own images, and a look at what the encoder learnt.

`run_pretraining` is what `simclr-lab pretrain --data PATH` runs: it pretrains (or loads the
cached run), writes `metrics.json`, a nearest-neighbour gallery (`gallery.png`) and a 2-D
map of the embeddings (`map.png`) to the output folder, and can export the encoder, with
the preprocessing it expects, as a `.keras` file that plain Keras loads.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from simclr_lab.config import Config
from simclr_lab.encoder import standalone_encoder
from simclr_lab.evaluate import encode
from simclr_lab.figures import plots
from simclr_lab.runs import train
from simclr_lab.runs.cache import atomic_write_text, check_writable_dir
from simclr_lab.runs.devices import describe
from simclr_lab.sources.data import load_splits
from simclr_lab.sources.folder import check_outside
from simclr_lab.sources.splits import Splits

PICTURED = 5_000  # images encoded for the gallery and the map at most (a seeded sample)
NO_LABELS = (
    "{folder} has no class folders, so there are no labels: the supervised baseline, the "
    "finetuning and the kNN / linear-probe scores need them and are left out; pretraining "
    "only. For those, put the images in one subfolder per class."
)


def check_export_path(path, overwrite: bool = True) -> Path:
    """The export file as a Path; ValueError unless it ends in .keras and its folder can be
    written, or (overwrite=False) when it exists already (checked before any training)."""
    path = Path(path).expanduser()
    if not path.name.endswith(".keras"):
        raise ValueError(
            f"export={str(path)!r} must end in .keras (Keras' native format), e.g. encoder.keras."
        )
    if path.is_dir():
        raise ValueError(f"export={str(path)!r} is a folder; name a file ending in .keras.")
    if not overwrite and path.exists():
        raise FileExistsError(
            f"export={str(path)!r} exists already; name a new file (an existing one is never "
            "overwritten from the command line)."
        )
    check_writable_dir(path.parent, "export folder")
    return path


def export_encoder(encoder, image_size: int, path) -> Path:
    """Write `standalone_encoder(encoder, image_size)` to `path` (.keras), through a
    temporary file and a rename."""
    path = check_export_path(path)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        keras.saving.save_model(standalone_encoder(encoder, image_size), temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def pictured_images(splits: Splits, count: int = PICTURED, seed: int = 0):
    """(images (N, H, W, 3) uint8, labels (N,) or None): what the gallery and the map show.
    With labels: the labelled and test images; without: the unlabelled ones. At most `count`,
    a seeded sample kept in order."""
    if splits.has_labels:
        images = np.concatenate([splits.labelled_images, splits.test_images])
        labels = np.concatenate([splits.labelled_labels, splits.test_labels])
    else:
        images, labels = splits.unlabelled, None
    if len(images) > count:
        chosen = np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))
        images, labels = images[chosen], None if labels is None else labels[chosen]
    return np.asarray(images), labels


def look_inside(encoder, splits: Splits, seed: int = 0, method: str = "pca"):
    """(gallery figure, map figure) of `encoder`'s features of `pictured_images(splits)`: six
    queries and their 8 nearest neighbours; the features in 2-D, coloured by class (when there
    are classes) and, beside, by each image's mean brightness."""
    images, labels = pictured_images(splits, seed=seed)
    features = encode(encoder, images)
    names = splits.class_names if labels is not None else None
    k = min(8, len(images) - 1)
    gallery = plots.plot_neighbours(images, features, 6, k, seed, labels, names)
    shown = labels if labels is not None else np.zeros(len(images), dtype="int32")
    what = "coloured by class folder" if labels is not None else "no labels"
    brightness = images.mean(axis=(1, 2, 3)) / 255  # a property every image has, labels or not
    embedding = plots.plot_embedding(
        features,
        shown,
        names or ("your images",),
        method=method,
        seed=seed,
        title=f"{len(images):,} images in the encoder's feature space ({method.upper()}, {what})",
        shade=("mean brightness", brightness),
    )
    return gallery, embedding


def run_pretraining(
    config: Config,
    out_dir,
    cache_dir=None,
    export=None,
    splits=None,
    verbose=2,
    log=print,
    overwrite_export: bool = True,
) -> dict:
    """Pretrain on `config.data` (or load the cached run), write metrics.json, gallery.png and
    map.png to `out_dir`, and the encoder to `export` (.keras) when given; returns the
    metrics. Every path is checked before any image is decoded or any step trained."""
    if config.data.source == "folder":
        check_outside(config.data.folder, out=out_dir, export=export, cache_dir=cache_dir)
    out = check_writable_dir(out_dir, "out")
    if export is not None:
        check_export_path(export, overwrite_export)
    start = time.perf_counter()
    if splits is None:
        log(f"Preset {config.name!r}: {config.description}")
        log(describe())
        splits = load_splits(config.data, cache_dir)
    plan = train.pretraining_plan(config, splits)  # refuses impossible batching first
    log(splits.summary())
    log(f"Pretraining batches: {plan.describe()}")
    result = train.pretrain(config, splits, cache_dir, verbose=verbose, log=log)
    where = "loaded from the cache" if result.from_cache else f"{result.seconds:.0f} s"
    last = {name: values[-1] for name, values in result.history.items()}
    log(f"pretraining: {', '.join(f'{k} {v:.4f}' for k, v in last.items())} ({where})")

    gallery, embedding = look_inside(result.model.encoder, splits, config.seed)
    plots.save_figure(gallery, out / "gallery.png")
    plots.save_figure(embedding, out / "map.png")
    written = [out / "gallery.png", out / "map.png"]
    if export is not None:
        written.append(export_encoder(result.model.encoder, splits.image_shape[0], export))
    metrics = {
        "preset": config.name,
        "config": config.to_dict(),
        "device": describe(),
        "data": splits.summary(),
        "origin": splits.origin,
        "labels": splits.has_labels,
        "pretraining": {
            "history": result.history,
            "seconds": result.seconds,
            "from_cache": result.from_cache,
        },
        "export": None if export is None else str(export),
        "wall_seconds": time.perf_counter() - start,
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    written.insert(0, out / "metrics.json")
    log(f"Wrote {', '.join(map(str, written))}")
    return metrics
