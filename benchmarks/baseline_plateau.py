"""Why the supervised baseline sits at chance for its first epochs (BASELINE_PLATEAU.md).

    python benchmarks/baseline_plateau.py reproduce            # train_baseline, 15 epochs
    python benchmarks/baseline_plateau.py diagnose [--pretrained WEIGHTS.h5]
    python benchmarks/baseline_plateau.py runs --variants default centred --seeds 0 1

Every run uses the `cpu` preset, judged on the validation split (10,000 training images
held out), with a fresh temporary cache. Results are printed as JSON lines (and appended to
--out if given).

Variants (each is the baseline of `build_classifier`, changed in one thing):
  default   the library's baseline: inputs in [0, 1], glorot-uniform, Adam 1e-3, bfloat16
  lr3e-4    Adam at 3e-4
  centred   inputs centred: the augmenter's output minus 0.5 (same encoder weights)
  he        He-normal kernels in the encoder (biases zero)
  float32   model.precision float32 instead of mixed_bfloat16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from simclr_lab.runs import presets, train
from simclr_lab.runs.callbacks import ReseedAugmentation
from simclr_lab.sources import data
from simclr_lab.sources.batching import EvalStream, LabelledStream

VARIANTS = ("default", "lr3e-4", "centred", "he", "float32")
CHANCE_MARGIN = 0.15  # val_acc above this: the run has left chance (10 classes)


def base_config(epochs: int = 15, seed: int = 0):
    return presets.get_preset(
        "cpu",
        **{"supervised.epochs": epochs, "data.evaluate_on": "validation", "seed": seed},
    )


def variant_config(config, variant: str):
    if variant == "lr3e-4":
        return config.replace(**{"supervised.learning_rate": 3e-4})
    if variant == "float32":
        return config.replace(**{"model.precision": "float32"})
    return config


def _compile(model, config):
    model.compile(
        optimizer=keras.optimizers.Adam(config.supervised.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    return model


def build_variant(config, splits, variant: str, encoder=None):
    """The baseline model of `variant` (or, with `encoder`, the finetuning model), compiled."""
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}.")
    if encoder is not None and variant in ("centred", "he"):
        raise ValueError(f"{variant!r} would change a pretrained encoder's inputs or weights.")
    config = variant_config(config, variant)
    model = train.build_classifier(config, splits, encoder)  # seeds, builds, compiles
    if variant == "centred":
        augmenter, encoder, head = model.layers
        centre = keras.layers.Rescaling(1.0, offset=-0.5, name="centre")
        model = keras.Sequential([augmenter, centre, encoder, head], name="baseline_model")
        _compile(model, config)
        model(splits.labelled_images[:2])
    elif variant == "he":
        for index, layer in enumerate(model.layers[1].layers):
            if hasattr(layer, "kernel"):
                init = keras.initializers.HeNormal(seed=config.seed * 100 + index)
                layer.kernel.assign(init(layer.kernel.shape))
    return model, config


def plateau_epochs(val_acc) -> int | None:
    """The first epoch (1-based) whose val_acc exceeds CHANCE_MARGIN; None if none does."""
    return next((i + 1 for i, a in enumerate(val_acc) if a > CHANCE_MARGIN), None)


def _rounded(history):
    return {key: [round(float(v), 4) for v in values] for key, values in history.items()}


def emit(record, out):
    line = json.dumps(record)
    print(line, flush=True)
    if out:
        with open(out, "a") as handle:
            handle.write(line + "\n")


# -- 1. Reproduce with the library's own driver -------------------------------------------------


def reproduce(args, splits):
    config = base_config(args.epochs, args.seeds[0])
    start = time.perf_counter()
    result = train.train_baseline(config, splits, tempfile.mkdtemp(), verbose=0)
    seconds = time.perf_counter() - start
    history = _rounded(result.history)
    emit(
        {
            "what": "reproduce",
            "seed": config.seed,
            "precision": config.model.precision,
            "first_epoch_above_15pct": plateau_epochs(history["val_acc"]),
            "final_val_acc": history["val_acc"][-1],
            "seconds": round(seconds, 1),
            "history": history,
        },
        args.out,
    )


# -- 2. Diagnose: one fixed batch through the encoder, at step 0 and later -----------------------


def _pairwise_cosine(features):
    """Mean cosine similarity between the images' flattened activations (1: all alike)."""
    flat = tf.reshape(tf.cast(features, tf.float32), (features.shape[0], -1))
    unit = tf.math.l2_normalize(flat, axis=1)
    sims = tf.matmul(unit, unit, transpose_b=True).numpy()
    n = sims.shape[0]
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def measure(model, images, labels):
    """Per encoder layer: dead units, activation scale, image similarity, gradient norms."""
    inputs_index = 2 if len(model.layers) == 4 else 1  # the centred variant adds a layer
    encoder, head = model.layers[inputs_index], model.layers[inputs_index + 1]
    x = images
    if inputs_index == 2:
        x = model.layers[1](x)
    rows = [
        {
            "layer": "input",
            "rms": float(tf.sqrt(tf.reduce_mean(tf.square(x)))),
            "mean": float(tf.reduce_mean(x)),
            "cosine": _pairwise_cosine(x),
        }
    ]
    with tf.GradientTape() as tape:
        activations = []
        for layer in encoder.layers:
            x = layer(x, training=False)
            if hasattr(layer, "kernel"):
                activations.append((layer, x))
        logits = head(x, training=False)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
    kernels = [layer.kernel for layer, _ in activations] + [head.kernel]
    grads = tape.gradient(loss, kernels)
    for (layer, act), grad, kernel in zip(activations, grads, kernels):
        a = tf.cast(act, tf.float32)
        flat = tf.reshape(a, (a.shape[0], -1))
        rows.append(
            {
                "layer": layer.name,
                "dead_units": float(
                    tf.reduce_mean(tf.cast(tf.reduce_all(flat == 0, 0), "float32"))
                ),
                "zero_frac": float(tf.reduce_mean(tf.cast(flat == 0, "float32"))),
                "rms": float(tf.sqrt(tf.reduce_mean(tf.square(a)))),
                "between_image_std": float(tf.reduce_mean(tf.math.reduce_std(flat, axis=0))),
                "cosine": _pairwise_cosine(a),
                "grad_norm": float(tf.norm(tf.cast(grad, tf.float32))),
                "weight_norm": float(tf.norm(tf.cast(kernel, tf.float32))),
                "bias_mean": float(tf.reduce_mean(tf.cast(layer.bias, tf.float32))),
            }
        )
    logits = tf.cast(logits, tf.float32)
    rows.append(
        {
            "layer": "logits",
            "std_over_images": float(tf.reduce_mean(tf.math.reduce_std(logits, axis=0))),
            "std_over_classes": float(tf.reduce_mean(tf.math.reduce_std(logits, axis=1))),
            "loss": float(loss),
            "grad_norm": float(tf.norm(tf.cast(grads[-1], tf.float32))),
            "acc": float(np.mean(np.argmax(logits.numpy(), 1) == labels)),
        }
    )
    return rows


def diagnose(args, splits):
    for variant in args.variants:
        for seed in args.seeds:
            config = base_config(60, seed)
            model, config = build_variant(config, splits, variant)
            _diagnose_one(model, config, splits, f"baseline/{variant}", args)
    if args.pretrained:
        config = base_config(60, args.seeds[0])
        contrastive = train.build_contrastive_model(config, splits)
        contrastive.load_weights(args.pretrained)
        encoder = keras.models.clone_model(contrastive.encoder)
        encoder.set_weights(contrastive.encoder.get_weights())
        model, config = build_variant(config, splits, "default", encoder)
        _diagnose_one(model, config, splits, "finetuning/pretrained encoder", args)


def _diagnose_one(model, config, splits, name, args):
    """Measure on one fixed augmented batch, training on the labelled stream in between."""
    stream = LabelledStream(splits.labelled_images, splits.labelled_labels, 32, 1000, config.seed)
    reseed = ReseedAugmentation(config.seed)
    reseed.set_model(model)
    reseed.on_epoch_begin(10_000)  # the same probe batch for every variant and seed
    pick = np.random.default_rng(1234).choice(len(splits.labelled_labels), 32, replace=False)
    images = model.layers[0](splits.labelled_images[pick], training=True)  # augmenter
    labels = splits.labelled_labels[pick]
    done = 0
    start = time.perf_counter()
    for step in args.steps:
        while done < step:
            if done % stream.steps_per_epoch == 0:
                reseed.on_epoch_begin(done // stream.steps_per_epoch)
            model.train_on_batch(*stream[done])
            done += 1
        emit(
            {
                "what": "diagnose",
                "model": name,
                "seed": config.seed,
                "precision": config.model.precision,
                "step": step,
                "seconds": round(time.perf_counter() - start, 1),
                "layers": measure(model, images, labels),
            },
            args.out,
        )


# -- 3. Short runs of each variant ---------------------------------------------------------------


def runs(args, splits):
    val_images, val_labels = splits.test_images, splits.test_labels
    if args.val_subset:
        val_images, val_labels = val_images[: args.val_subset], val_labels[: args.val_subset]
    for variant in args.variants:
        for seed in args.seeds:
            config = base_config(args.epochs, seed)
            model, config = build_variant(config, splits, variant)
            stream = LabelledStream(
                splits.labelled_images, splits.labelled_labels, 32, args.epochs, seed
            )
            start = time.perf_counter()
            fit = model.fit(
                stream,
                validation_data=EvalStream(val_images, val_labels, 500),
                epochs=args.epochs,
                steps_per_epoch=stream.steps_per_epoch,
                shuffle=False,
                verbose=0,
                callbacks=[ReseedAugmentation(seed)],
            )
            history = _rounded(fit.history)
            emit(
                {
                    "what": "run",
                    "variant": variant,
                    "seed": seed,
                    "precision": config.model.precision,
                    "learning_rate": config.supervised.learning_rate,
                    "validation_images": len(val_labels),
                    "first_epoch_above_15pct": plateau_epochs(history["val_acc"]),
                    "final_val_acc": history["val_acc"][-1],
                    "seconds": round(time.perf_counter() - start, 1),
                    "history": history,
                },
                args.out,
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("reproduce", "diagnose", "runs"))
    parser.add_argument("--variants", nargs="+", default=["default"], choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--steps", nargs="+", type=int, default=[0, 50, 200, 400])
    parser.add_argument("--val-subset", type=int, default=0, help="first N validation images")
    parser.add_argument("--pretrained", help="a pretraining run's weights.weights.h5")
    parser.add_argument("--out", help="append the JSON lines to this file too")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    splits = data.load_splits(base_config().data)
    print(f"# data loaded in {time.perf_counter() - start:.1f} s", flush=True)
    {"reproduce": reproduce, "diagnose": diagnose, "runs": runs}[args.command](args, splits)


if __name__ == "__main__":
    main()
