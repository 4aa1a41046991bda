"""Throughput of the pretraining step, and where its time goes.

`run_bench` times, on random uint8 images after warm-up (median over steps): the input
stream alone, the two augmentations alone, the encoder and head forward and backward alone
(augmenters replaced by plain rescaling), and the whole training step; it also measures this
machine's matrix-product peaks in the same run (float32 in NumPy, and the step's compute type
on the Keras backend), to put the achieved GFLOP/s in scale.
With `devices` above 1 (JAX) the step runs data-parallel, each device with one step's batch:
the figure for the multi-device path, beside its equality tests.
"""

from __future__ import annotations

import json
import time

import keras
import numpy as np

from simclr_lab.config import MIN_IMAGE_SIZE
from simclr_lab.encoder import encoder_multiply_adds
from simclr_lab.runs.devices import describe
from simclr_lab.runs.distribute import over_devices
from simclr_lab.runs.presets import get_preset
from simclr_lab.runs.train import build_contrastive_model
from simclr_lab.sources.batching import PairedStream, plan_batches
from simclr_lab.sources.splits import Splits


def pretraining_step_flop(image_size: int, batch_size: int = 525, width: int = 128) -> int:
    """FLOP of one pretraining step: the encoder's multiply-adds per view, times two views of
    each of `batch_size` images, times 6 (forward and backward, two FLOP a multiply-add)."""
    return 2 * batch_size * 6 * encoder_multiply_adds(image_size, width)


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matrix-product rate of NumPy here, in GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype="float32")
    b = np.random.default_rng(1).standard_normal((size, size), dtype="float32")
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def backend_matmul_peak_gflops(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """Best rate of a `size` x `size` matrix product in `dtype` on the Keras backend (where a
    bfloat16 step's convolutions run), in GFLOP/s."""
    a = keras.ops.cast(keras.random.normal((size, size), seed=0), dtype)

    def product():
        return keras.ops.convert_to_numpy(keras.ops.matmul(a, a))

    product()  # warm-up
    best = min(_timed(product) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_time(fn, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    return float(np.median([_timed(fn) for _ in range(steps)]))


def method_step_seconds(config, splits: Splits, methods: dict, steps=5, warmup=2) -> dict:
    """{name: median seconds of one pretraining step} for each {name: dotted changes} of
    `config` (e.g. {"Barlow Twins": {"pretrain.method": "barlow_twins"}}), on the first batch
    of `splits`. The models take turns step by step, so a machine busy with other work slows
    them alike."""
    plan = plan_batches(
        len(splits.unlabelled),
        len(splits.labelled_labels),
        config.pretrain.batch_size,
        config.pretrain.labelled_per_step,
    )
    stream = PairedStream(splits.unlabelled, splits.labelled_images, splits.labelled_labels, plan)
    (u, x), y = stream[0]
    models = {
        name: build_contrastive_model(config.replace(**changes), splits, plan.steps)
        for name, changes in methods.items()
    }
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch((u, x), y)
    times = {name: [] for name in models}
    for _ in range(steps):
        for name, model in models.items():
            times[name].append(_timed(lambda model=model: model.train_on_batch((u, x), y)))
    return {name: float(np.median(values)) for name, values in times.items()}


class _AugmentOnly(keras.Model):
    """Two strong views of a batch, as the training step makes them (for timing)."""

    def __init__(self, augmenter):
        super().__init__(name="augment_only")
        self.augmenter = augmenter

    def call(self, images):
        return [self.augmenter(images, training=True) for _ in range(2)]


def _random_batches(image_size: int, batch_size: int, labelled_per_step: int, steps: int):
    """(splits, stream, plan) of random uint8 images: enough unlabelled ones for `steps`
    steps of `batch_size`, `labelled_per_step` labelled ones a step."""
    rng = np.random.default_rng(0)
    count = (batch_size - labelled_per_step) * steps
    unlabelled = rng.integers(0, 256, (count, image_size, image_size, 3), dtype="uint8")
    labelled = rng.integers(
        0, 256, (labelled_per_step * 4, image_size, image_size, 3), dtype="uint8"
    )
    labels = rng.integers(0, 10, len(labelled)).astype("int32")
    names = tuple(str(i) for i in range(10))
    splits = Splits("random", unlabelled, labelled, labels, labelled, labels, names)
    plan = plan_batches(count, len(labels), batch_size, labelled_per_step)
    return splits, PairedStream(unlabelled, labelled, labels, plan), plan


def run_bench(
    image_size=32,
    batch_size=525,
    labelled_per_step=25,
    steps=10,
    warmup=3,
    precision="float32",
    preset="reference",
    devices=1,
) -> dict:
    """Images/s of each part of the pretraining step; see the module docstring.

    Long because: the four parts are built and timed side by side on one batch.

    precision: "float32", "mixed_bfloat16" (bfloat16 compute, float32 weights) or "auto"
    (bfloat16 where this machine computes it natively). devices: data-parallel over that many
    devices (JAX), each with `batch_size` images (`labelled_per_step` of them labelled), so
    the step's global batch is `devices` times as large.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size={image_size} is below the {MIN_IMAGE_SIZE} pixels allowed.")
    batch_size, labelled_per_step = batch_size * devices, labelled_per_step * devices
    config = get_preset(
        preset,
        **{
            "model.precision": precision,
            "data.image_size": image_size,
            "pretrain.batch_size": batch_size,
            "pretrain.labelled_per_step": labelled_per_step,
            "distribute.devices": devices,
        },
    )
    splits, stream, plan = _random_batches(
        image_size,
        batch_size,
        labelled_per_step,
        max(steps + warmup, 2),  # the stream is timed on batch 2
    )
    with over_devices(config, pretraining=(batch_size - labelled_per_step, labelled_per_step)):
        seconds = _time_parts(config, splits, plan, stream, steps, warmup)
    flop_per_step = pretraining_step_flop(image_size, batch_size, config.model.width)
    peak = matmul_peak_gflops()
    compute = keras.mixed_precision.Policy(config.model.precision).compute_dtype
    backend_peak = backend_matmul_peak_gflops(compute)
    step = seconds["whole training step"]
    return {
        "backend": keras.backend.backend(),
        "device": describe(),
        "precision": config.model.precision,
        "image_size": image_size,
        "batch_size": batch_size,
        "devices": devices,
        "images_per_s": batch_size / step,
        "images_per_s_per_device": batch_size / step / devices,
        "seconds": seconds,
        "images_per_s_by_part": {name: batch_size / s for name, s in seconds.items()},
        "gflop_per_step": flop_per_step / 1e9,
        "achieved_gflops": flop_per_step / step / 1e9,
        "matmul_peak_gflops": peak,
        "compute_dtype": compute,
        "backend_matmul_peak_gflops": backend_peak,
    }


def _time_parts(config, splits, plan, stream, steps: int, warmup: int) -> dict:
    """{part: median seconds} of the four parts, built and timed within one device scope."""
    (u, x), y = stream[0]
    model = build_contrastive_model(config, splits, plan.steps)
    rescale = keras.Sequential([keras.layers.Rescaling(1 / 255)])
    plain = build_contrastive_model(config, splits, plan.steps, augmenters=(rescale, rescale))
    augment_only = _AugmentOnly(model.contrastive_augmenter)
    images = np.concatenate([u, x])
    return {
        "input stream": _median_time(lambda: stream[1], steps, 1),
        "augmentation (2 views)": _median_time(
            lambda: augment_only.predict_on_batch(images), steps, warmup
        ),
        "encoder + head, forward and backward": _median_time(
            lambda: plain.train_on_batch((u, x), y), steps, warmup
        ),
        "whole training step": _median_time(
            lambda: model.train_on_batch((u, x), y), steps, warmup
        ),
    }


def bench_table(result: dict) -> str:
    """The result as a plain-text table, then one JSON line (prefixed BENCH_JSON)."""
    lines = [
        f"pretraining step, {result['image_size']}x{result['image_size']}, batch "
        f"{result['batch_size']}, {result['precision']}, {result['device']} "
        f"(median over steps)",
    ]
    if result["devices"] > 1:
        lines.append(
            f"over {result['devices']} devices, {result['batch_size'] // result['devices']} "
            f"images each: {result['images_per_s_per_device']:.0f} images/s per device"
        )
    lines.append(f"{'part':<40}{'ms':>10}{'images/s':>12}")
    for name, s in result["seconds"].items():
        lines.append(f"{name:<40}{s * 1000:>10.1f}{result['batch_size'] / s:>12.0f}")
    lines.append(
        f"achieved {result['achieved_gflops']:.1f} GFLOP/s "
        f"({result['gflop_per_step']:.1f} GFLOP a step) against a float32 matmul peak of "
        f"{result['matmul_peak_gflops']:.0f} GFLOP/s (NumPy) and a {result['compute_dtype']} "
        f"one of {result['backend_matmul_peak_gflops']:.0f} GFLOP/s ({result['backend']}) here"
    )
    lines.append("BENCH_JSON " + json.dumps(result))
    return "\n".join(lines)
