"""Hyperparameters as frozen dataclasses, and the three named presets.

Every default is the reference recipe's value (the Keras example "Semi-supervised image
classification using contrastive pretraining with SimCLR"). Builders take flat arguments;
only the notebooks, the CLI and the training driver unpack a `Config`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

PRESET_ENV_VAR = "SIMCLR_LAB_PRESET"
SOURCES = ("stl10", "fashion_mnist", "fashion_mnist_composite", "synthetic")
EVALUATION_SPLITS = ("test", "validation")
LOSSES = ("infonce", "ntxent")
RECIPES = ("reference", "paper")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
MIN_IMAGE_SIZE = 31  # four valid 3x3 convolutions with stride 2 need at least 31 pixels


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_choice(name: str, value, allowed) -> None:
    _check(
        value in allowed, f"Unknown {name}={value!r}; allowed: {', '.join(map(repr, allowed))}."
    )


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how many of each split are used."""

    source: str = "stl10"  # the reference dataset: 100k unlabelled, 5k labelled, 8k test
    image_size: int = 96  # STL-10's native resolution
    labels_per_class: int | None = None  # None: the whole labelled split (500 a class on STL-10)
    num_unlabelled: int | None = None  # None: every unlabelled image the source has
    num_test: int | None = None  # None: the whole test split
    seed: int = 42  # picks the class-balanced labelled subset
    # "validation": 10,000 training images set aside take the test split's place (Fashion-MNIST
    # sources), for choosing settings; the test split is then never read.
    evaluate_on: str = "test"

    def __post_init__(self):
        _check_choice("source", self.source, SOURCES)
        _check_choice("evaluate_on", self.evaluate_on, EVALUATION_SPLITS)
        _check(
            self.evaluate_on == "test" or self.source.startswith("fashion_mnist"),
            f"evaluate_on='validation' needs a Fashion-MNIST source; source={self.source!r} "
            "has no spare labelled images to hold out.",
        )
        _check(
            isinstance(self.image_size, int) and self.image_size >= MIN_IMAGE_SIZE,
            f"image_size={self.image_size!r} is too small: the encoder needs at least "
            f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} pixels.",
        )
        for name in ("labels_per_class", "num_unlabelled", "num_test"):
            value = getattr(self, name)
            _check(
                value is None or (isinstance(value, int) and value >= 1),
                f"{name}={value!r} must be None or a positive integer.",
            )


@dataclass(frozen=True)
class AugmentConfig:
    """One augmenter's strength (SPEC: flip, translate + zoom from min_area, colour affine)."""

    min_area: float = 0.25  # strong: a view keeps at least a quarter of the image
    brightness: float = 0.6  # strong: brightness scale drawn from [0.4, 1.6]
    jitter: float = 0.2  # strong: colour-mixing matrix entries drawn from [-0.2, 0.2]
    recipe: str = "reference"  # "paper": random resized crop, colour jitter, greyscale
    grayscale: float = 0.0  # "reference" recipe: chance of turning a view grey after the colour

    def __post_init__(self):
        _check(
            isinstance(self.min_area, (int, float)) and 0 < self.min_area <= 1,
            f"min_area={self.min_area!r} must be in (0, 1].",
        )
        for name in ("brightness", "jitter"):
            value = getattr(self, name)
            _check(
                isinstance(value, (int, float)) and value >= 0,
                f"{name}={value!r} must be a number >= 0.",
            )
        _check_choice("recipe", self.recipe, RECIPES)
        _check(
            isinstance(self.grayscale, (int, float)) and 0 <= self.grayscale <= 1,
            f"grayscale={self.grayscale!r} must be a probability in [0, 1].",
        )


STRONG = AugmentConfig()  # the reference's contrastive augmenter
WEAK = AugmentConfig(min_area=0.75, brightness=0.3, jitter=0.1)  # its classification augmenter


@dataclass(frozen=True)
class ModelConfig:
    """Encoder and projection head."""

    width: int = 128  # filters of every conv layer and units of every dense layer
    projection_batchnorm: bool = False  # the reference's head has none; SimCLR v1 uses it
    # "mixed_bfloat16": bfloat16 arithmetic in encoder and head (float32 weights and losses);
    # faster on GPUs and on CPUs with AVX512-BF16, slightly different numbers. "auto": that
    # where this machine has native bfloat16, else float32 (`get_preset` decides).
    precision: str = "float32"

    def __post_init__(self):
        _check(
            isinstance(self.width, int) and self.width >= 1,
            f"width={self.width!r} must be a positive integer.",
        )
        _check_choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class PretrainConfig:
    """Contrastive pretraining with the online linear probe."""

    epochs: int = 20
    batch_size: int = 525  # (100,000 + 5,000) // 525 = 200 steps: 500 unlabelled + 25 labelled
    labelled_per_step: int | None = None  # None: the reference's L // steps; set it to repeat
    temperature: float = 0.1  # lower: sharper softmax, higher contrastive accuracy
    learnable_temperature: bool = False  # ALIGN: train log(temperature), starting at the above
    loss: str = "infonce"  # the reference's symmetric InfoNCE (N-1 negatives); or "ntxent"
    learning_rate: float = 1e-3  # Adam's default
    schedule: str = "constant"  # or "cosine" decay to zero
    warmup_fraction: float = 0.0  # share of all steps spent warming up (cosine only)
    augment: AugmentConfig = STRONG

    def __post_init__(self):
        _check(
            isinstance(self.epochs, int) and self.epochs >= 1,
            f"epochs={self.epochs!r} must be a positive integer.",
        )
        _check(
            isinstance(self.batch_size, int) and self.batch_size >= 2,
            f"batch_size={self.batch_size!r} must be an integer >= 2.",
        )
        _check(
            self.labelled_per_step is None
            or (isinstance(self.labelled_per_step, int) and 1 <= self.labelled_per_step),
            f"labelled_per_step={self.labelled_per_step!r} must be None or an integer >= 1.",
        )
        _check(
            self.labelled_per_step is None or self.labelled_per_step < self.batch_size,
            f"labelled_per_step={self.labelled_per_step!r} leaves no unlabelled images in a "
            f"batch of {self.batch_size}; it must be below batch_size.",
        )
        _check(
            isinstance(self.temperature, (int, float)) and self.temperature > 0,
            f"temperature={self.temperature!r} must be > 0.",
        )
        _check(
            isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0,
            f"learning_rate={self.learning_rate!r} must be > 0.",
        )
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check(
            0 <= self.warmup_fraction < 1,
            f"warmup_fraction={self.warmup_fraction!r} must be in [0, 1).",
        )


@dataclass(frozen=True)
class SupervisedConfig:
    """The baseline and the finetuning: the weak augmenter, Adam, sparse cross-entropy."""

    epochs: int = 20
    batch_size: int | None = None  # None: the pretraining's labelled images per step (25)
    learning_rate: float = 1e-3
    augment: AugmentConfig = WEAK

    def __post_init__(self):
        _check(
            isinstance(self.epochs, int) and self.epochs >= 1,
            f"epochs={self.epochs!r} must be a positive integer.",
        )
        _check(
            self.batch_size is None or (isinstance(self.batch_size, int) and self.batch_size >= 1),
            f"batch_size={self.batch_size!r} must be None or a positive integer.",
        )
        _check(
            isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0,
            f"learning_rate={self.learning_rate!r} must be > 0.",
        )


@dataclass(frozen=True)
class Config:
    """A whole comparison: data, model, pretraining, and the two supervised runs."""

    name: str = "reference"
    description: str = "SPEC's recipe on STL-10 at 96x96: for a GPU."
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)
    seed: int = 0  # weight initialisation and augmentation randomness

    def replace(self, **changes) -> Config:
        """A copy with dotted fields changed: `cfg.replace(**{"pretrain.epochs": 2})`."""
        return _replace_dotted(self, changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key_dict(self, *sections: str) -> dict:
        """The settings that change a result, for cache keys (name/description excluded)."""
        full = self.to_dict()
        chosen = sections or ("data", "model", "pretrain", "supervised", "seed")
        return {name: full[name] for name in chosen}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _replace_dotted(obj, changes: dict, prefix: str = ""):
    direct, nested = {}, {}
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise ValueError(
                f"Unknown setting {prefix + key!r}; {prefix.rstrip('.') or 'the config'} has: "
                f"{', '.join(sorted(names))}."
            )
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = _replace_dotted(direct.get(head, getattr(obj, head)), sub, f"{head}.")
    return dataclasses.replace(obj, **direct)


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
    config = config.replace(**changes) if changes else config
    if config.model.precision == "auto":  # decided here, so configs say what really runs
        from simclr_lab.devices import resolve_precision

        config = config.replace(**{"model.precision": resolve_precision("auto")})
    return config


def default_preset_name() -> str:
    """`reference` when a GPU is visible to the Keras backend, `cpu` otherwise."""
    from simclr_lab.devices import gpu_names

    return "reference" if gpu_names() else "cpu"
