"""The reference recipe's contrastive pretraining, in plain Keras on TensorFlow: the baseline
that `side_by_side.py` times simclr-lab against.

Written from the recipe's facts (the Keras example "Semi-supervised image classification
using contrastive pretraining with SimCLR"), independent of simclr_lab:

- data: unlabelled and labelled streams, each shuffled (a buffer of 10 batches) and batched
  so that one epoch is (unlabelled + labelled) // 525 steps, zipped one pair a step;
- augmentation: rescale, horizontal flip, translation by up to z/2, zoom in by up to z
  (z = 1 - sqrt(min_area)), the random colour affine; strong 0.25 / 0.6 / 0.2, weak
  0.75 / 0.3 / 0.1;
- encoder 4 x Conv2D(128, 3, stride 2, ReLU), Flatten, Dense(128, ReLU); head
  Dense(128, ReLU), Dense(128); probe Dense(10);
- one step: two strong views of the 525 images, symmetric InfoNCE at temperature 0.1 with
  Adam on encoder and head; the probe on weak views of the labelled images through the
  encoder in inference mode, with its own Adam.

    python benchmarks/reference_recipe.py --data fashion_mnist --num-unlabeled 10000 \\
        --num-labeled 500 --epochs 1 --phases pretrain

Prints one line `RESULT_JSON {...}`: the pretraining phase's images a second after the
first steps (warm-up: tracing and memory).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH, WIDTH, TEMPERATURE, WARMUP_STEPS = 525, 128, 0.1, 3
STRONG, WEAK = (0.25, 0.6, 0.2), (0.75, 0.3, 0.1)  # min_area, brightness, jitter
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class RandomColorAffine(keras.layers.Layer):
    """Training only, per image: pixels (rows of 3 colours) times s*I + J, clipped to 0..1;
    s ~ U(1 - brightness, 1 + brightness), J ~ U(-jitter, jitter) a 3x3 matrix."""

    def __init__(self, brightness, jitter, **kwargs):
        super().__init__(**kwargs)
        self.brightness, self.jitter = brightness, jitter

    def call(self, images, training=True):
        if not training:
            return images
        count = tf.shape(images)[0]
        scale = tf.random.uniform((count, 1, 1, 1), 1 - self.brightness, 1 + self.brightness)
        jitter = tf.random.uniform((count, 1, 3, 3), -self.jitter, self.jitter)
        matrix = scale * tf.eye(3, batch_shape=[1, 1]) + jitter
        return tf.clip_by_value(tf.matmul(images, matrix), 0.0, 1.0)


def augmenter(min_area, brightness, jitter, size):
    zoom = 1.0 - math.sqrt(min_area)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomTranslation(zoom / 2, zoom / 2),
            keras.layers.RandomZoom((-zoom, 0.0), (-zoom, 0.0)),
            RandomColorAffine(brightness, jitter),
        ]
    )


def encoder(size):
    return keras.Sequential(
        [keras.Input((size, size, 3))]
        + [keras.layers.Conv2D(WIDTH, 3, strides=2, activation="relu") for _ in range(4)]
        + [keras.layers.Flatten(), keras.layers.Dense(WIDTH, activation="relu")]
    )


class Pretraining(keras.Model):
    def __init__(self, size):
        super().__init__()
        self.strong, self.weak = augmenter(*STRONG, size), augmenter(*WEAK, size)
        self.encoder = encoder(size)
        self.head = keras.Sequential(
            [keras.Input((WIDTH,)), keras.layers.Dense(WIDTH, activation="relu")]
            + [keras.layers.Dense(WIDTH)]
        )
        self.probe = keras.Sequential([keras.Input((WIDTH,)), keras.layers.Dense(10)])
        self.c_loss = keras.metrics.Mean(name="c_loss")
        self.p_acc = keras.metrics.SparseCategoricalAccuracy(name="p_acc")

    def compile(self, **kwargs):
        super().compile(**kwargs)
        self.c_optimizer, self.p_optimizer = keras.optimizers.Adam(), keras.optimizers.Adam()

    @property
    def metrics(self):
        return [self.c_loss, self.p_acc]

    def train_step(self, data):
        (unlabelled, _), (labelled, labels) = data
        images = tf.concat([unlabelled, labelled], axis=0)
        with tf.GradientTape() as tape:
            projections = [
                self.head(self.encoder(self.strong(images, training=True), training=True))
                for _ in range(2)
            ]
            p1, p2 = (tf.math.l2_normalize(p, axis=1) for p in projections)
            similarities = tf.matmul(p1, p2, transpose_b=True) / TEMPERATURE
            targets = tf.range(tf.shape(images)[0])
            loss = (
                keras.losses.sparse_categorical_crossentropy(
                    targets, similarities, from_logits=True
                )
                + keras.losses.sparse_categorical_crossentropy(
                    targets, tf.transpose(similarities), from_logits=True
                )
            ) / 2
            loss = tf.reduce_mean(loss)
        weights = self.encoder.trainable_weights + self.head.trainable_weights
        self.c_optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        features = self.encoder(self.weak(labelled, training=True), training=False)
        with tf.GradientTape() as tape:
            logits = self.probe(features, training=True)
            p_loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        weights = self.probe.trainable_weights
        self.p_optimizer.apply_gradients(zip(tape.gradient(p_loss, weights), weights))
        self.c_loss.update_state(loss)
        self.p_acc.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(name, unlabelled, labelled):
    """(unlabelled images, labelled images, labels), uint8 (N, S, S, 3)."""
    if name == "random96":
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (unlabelled + labelled, 96, 96, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, labelled).astype("int32")
        return images[:unlabelled], images[unlabelled:], labels
    images = _idx(FASHION_MNIST / "train-images-idx3-ubyte.gz")[: unlabelled + labelled]
    labels = _idx(FASHION_MNIST / "train-labels-idx1-ubyte.gz")[unlabelled:][:labelled]
    images = np.repeat(np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None], 3, axis=-1)
    return images[:unlabelled], images[unlabelled:], labels.astype("int32")


def streams(unlabelled, labelled, labels):
    steps = (len(unlabelled) + len(labelled)) // BATCH
    u_batch, l_batch = len(unlabelled) // steps, len(labelled) // steps
    u = tf.data.Dataset.from_tensor_slices((unlabelled, np.zeros(len(unlabelled), "int32")))
    lab = tf.data.Dataset.from_tensor_slices((labelled, labels))
    u = u.shuffle(10 * u_batch).batch(u_batch, drop_remainder=True)
    lab = lab.shuffle(10 * l_batch).batch(l_batch, drop_remainder=True)
    return tf.data.Dataset.zip((u, lab)).prefetch(tf.data.AUTOTUNE), steps


class StepTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["fashion_mnist", "random96"], default="fashion_mnist")
    parser.add_argument("--num-unlabeled", type=int, default=10_000)
    parser.add_argument("--num-labeled", type=int, default=500)
    parser.add_argument("--num-test", type=int, default=525, help="unused: no validation here")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--phases", default="pretrain", choices=["pretrain"])
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--no-summary", action="store_true", help="(always: prints no summary)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    unlabelled, labelled, labels = load(args.data, args.num_unlabeled, args.num_labeled)
    dataset, steps = streams(unlabelled, labelled, labels)
    if steps <= WARMUP_STEPS:
        parser.error(f"{steps} steps an epoch: more than {WARMUP_STEPS} are needed to time any")
    model = Pretraining(unlabelled.shape[1])
    model.compile()
    timer = StepTimes()
    model.fit(dataset, epochs=args.epochs, verbose=args.verbose, callbacks=[timer])
    timed = timer.times[WARMUP_STEPS:]
    result = {
        "data": args.data,
        "image_size": int(unlabelled.shape[1]),
        "steps_per_epoch": steps,
        "phases": {
            "pretrain": {
                "post_warmup_steps": len(timed),
                "post_warmup_images_per_s": round(BATCH * len(timed) / sum(timed), 1),
            }
        },
    }
    print("RESULT_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
