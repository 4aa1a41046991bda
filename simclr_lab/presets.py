"""The named presets, and the one that suits this machine.

`get_preset()` picks `$SIMCLR_LAB_PRESET`, else `reference` where Keras sees a GPU and `cpu`
where it does not, and decides `precision="auto"` for this machine, so that a config (and the
cache keys and metrics made from it) says what really runs. `$SIMCLR_LAB_DEVICES` (all or N)
sets `distribute.devices`, so the lessons run data-parallel unchanged.
"""

from __future__ import annotations

import os

from simclr_lab.config import (
    AugmentConfig,
    Config,
    DataConfig,
    ModelConfig,
    PretrainConfig,
    SupervisedConfig,
)
from simclr_lab.devices import gpu_names, resolve_precision

PRESET_ENV_VAR = "SIMCLR_LAB_PRESET"
DEVICES_ENV_VAR = "SIMCLR_LAB_DEVICES"

PRESETS: dict[str, Config] = {
    "reference": Config(),
    "cpu": Config(
        name="cpu",
        description=(
            "The Fashion-MNIST composite at 32x32 (each real item scaled, placed and tinted on "
            "a colour-gradient background, with noise; see simclr_lab.composite), 100 labels a "
            "class, all 60,000 training images unlabelled, for a 2-core CPU in under 30 "
            "minutes. Scaled down from the reference: 32x32 images make a step ~11x cheaper "
            "and pretraining runs 12 epochs instead of 20, with the SimCLR paper's "
            "faster-learning choices: NT-Xent loss at temperature 0.2, BatchNorm in the "
            "projection head, cosine schedule with 10% warm-up, greyscale views (p 0.2). The "
            "labelled stream repeats at 25 a step (500 + 25, as on STL-10); the baseline and "
            "finetuning train for 60 epochs with batch 32 over the 1,000 labels. Chosen on a "
            "validation split: benchmarks/CPU_LESSON.md. Encoder and head compute in bfloat16 "
            "where the CPU has it natively (AVX512-BF16 or AMX: about 1.6x faster), else in "
            "float32 (precision auto)."
        ),
        data=DataConfig(source="fashion_mnist_composite", image_size=32, labels_per_class=100),
        model=ModelConfig(projection_batchnorm=True, precision="auto"),
        pretrain=PretrainConfig(
            epochs=12,
            labelled_per_step=25,
            loss="ntxent",
            temperature=0.2,
            schedule="cosine",
            warmup_fraction=0.1,
            augment=AugmentConfig(grayscale=0.2),
        ),
        supervised=SupervisedConfig(epochs=60, batch_size=32),
    ),
    "cpu_plain": Config(
        name="cpu_plain",
        description=(
            "Plain Fashion-MNIST at 32x32 (28x28 padded, grey repeated to 3 channels) with the "
            "reference's recipe, 100 labels a class, all 60,000 training images unlabelled, "
            "for a 2-core CPU in under 30 minutes: where pretraining barely pays. Scaled down "
            "from the reference: 32x32 images make a step ~11x cheaper, pretraining runs 10 "
            "epochs instead of 20. The reference's batching would give "
            "1,000 // 116 = 8 labelled images a step, so the labelled stream repeats at 25 a "
            "step (500 + 25, as on STL-10), and the baseline and finetuning train with batch "
            "32 over the 1,000 labels."
        ),
        data=DataConfig(source="fashion_mnist", image_size=32, labels_per_class=100),
        pretrain=PretrainConfig(epochs=10, labelled_per_step=25),
        supervised=SupervisedConfig(epochs=30, batch_size=32),
    ),
    "smoke": Config(
        name="smoke",
        description=(
            "The synthetic shapes set at 32x32: 960 unlabelled, 20 labels a class, 300 test "
            "images, 2 epochs each. Runs in seconds; for tests and CI, not for conclusions."
        ),
        data=DataConfig(
            source="synthetic",
            image_size=32,
            labels_per_class=20,
            num_unlabelled=960,
            num_test=300,
        ),
        pretrain=PretrainConfig(epochs=2, batch_size=128, labelled_per_step=16),
        supervised=SupervisedConfig(epochs=2, batch_size=32),
    ),
}


def get_preset(name: str | None = None, **changes) -> Config:
    """A named preset (or `$SIMCLR_LAB_PRESET`, else the one that suits this machine).

    `changes` are dotted overrides, e.g. `get_preset("cpu", **{"pretrain.epochs": 1})`.
    """
    if name is None:
        name = os.environ.get(PRESET_ENV_VAR) or default_preset_name()
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; allowed: {', '.join(map(repr, PRESETS))}.")
    config = PRESETS[name]
    devices = os.environ.get(DEVICES_ENV_VAR)
    if devices and "distribute.devices" not in changes:  # an explicit setting wins
        changes = {**changes, "distribute.devices": int(devices) if devices.isdigit() else devices}
    config = config.replace(**changes) if changes else config
    if config.model.precision == "auto":
        config = config.replace(**{"model.precision": resolve_precision("auto")})
    return config


def default_preset_name() -> str:
    """`reference` when a GPU is visible to the Keras backend, `cpu` otherwise."""
    return "reference" if gpu_names() else "cpu"
