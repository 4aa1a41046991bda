"""The named presets, and the one that suits this machine.

`get_preset()` picks `$SIMCLR_LAB_PRESET`, else `reference` where Keras sees a GPU and `cpu`
where it does not, and decides `precision="auto"` for this machine, so that a config (and the
cache keys and metrics made from it) says what really runs. `$SIMCLR_LAB_DEVICES` (all or N)
sets `distribute.devices`, so the lessons run data-parallel unchanged; `$SIMCLR_LAB_PRECISION`
(float32, mixed_bfloat16, ...) sets `model.precision`, e.g. float32 to run as a CPU without
bfloat16 does.
"""

from __future__ import annotations

import os

from simclr_lab.config import (
    AugmentConfig,
    Config,
    DataConfig,
    ModelConfig,
    PretrainConfig,
    SettingError,
    SupervisedConfig,
)

PRESET_ENV_VAR = "SIMCLR_LAB_PRESET"
DEVICES_ENV_VAR = "SIMCLR_LAB_DEVICES"
PRECISION_ENV_VAR = "SIMCLR_LAB_PRECISION"  # e.g. float32: as on a CPU without bfloat16

PRESETS: dict[str, Config] = {
    "reference": Config(),
    "cpu": Config(
        name="cpu",
        description=(
            "The Fashion-MNIST composite at 32x32: 60,000 unlabelled images, 100 labels a "
            "class; 12 pretraining and 60 supervised epochs, the whole comparison in under 30 "
            "minutes on 2 CPU cores (README: Presets)."
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
            "Plain Fashion-MNIST at 32x32 with the reference's recipe: 60,000 unlabelled "
            "images, 100 labels a class; where pretraining barely pays (README: Presets)."
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


def get_preset(name: str | None = None, /, **changes) -> Config:
    """A named preset (or `$SIMCLR_LAB_PRESET`, else the one that suits this machine).

    `changes` are dotted overrides, e.g. `get_preset("cpu", **{"pretrain.epochs": 1})`.
    """
    if "name" in changes:
        raise SettingError(
            f"'name' is the preset's name, not a setting (received name={changes['name']!r}); "
            f"choose a preset instead: {', '.join(map(repr, PRESETS))}."
        )
    if name is None:
        name = os.environ.get(PRESET_ENV_VAR) or default_preset_name()
        where = f"${PRESET_ENV_VAR}={name!r}: " if os.environ.get(PRESET_ENV_VAR) else ""
    else:
        where = ""
    if name not in PRESETS:
        raise ValueError(
            f"{where}Unknown preset {name!r}; allowed: {', '.join(map(repr, PRESETS))}."
        )
    config = PRESETS[name].replace(**changes) if changes else PRESETS[name]
    for variable, setting in (
        (DEVICES_ENV_VAR, "distribute.devices"),
        (PRECISION_ENV_VAR, "model.precision"),
    ):
        value = os.environ.get(variable)
        if value and setting not in changes:  # an explicit setting wins
            value = int(value) if value.isdigit() else value
            try:
                config = config.replace(**{setting: value})
            except SettingError as error:
                raise SettingError(f"${variable}: {error}") from None
    if config.model.precision == "auto":
        from simclr_lab.runs.devices import resolve_precision  # imports Keras: only when asked

        config = config.replace(**{"model.precision": resolve_precision("auto")})
    return config


def default_preset_name() -> str:
    """`cpu` on every machine: the lessons' prose is written for it, and its shipped runs load
    anywhere (on a GPU it also trains in seconds). `reference` is asked for by name."""
    return "cpu"
