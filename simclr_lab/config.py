"""Hyperparameters as frozen dataclasses, each value checked when it is set (the named
presets built from them are in `simclr_lab.runs.presets`).

Every default is the reference recipe's value (the Keras example "Semi-supervised image
classification using contrastive pretraining with SimCLR"). Builders take flat arguments;
only the notebooks, the CLI and the training driver unpack a `Config`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

SOURCES = ("stl10", "fashion_mnist", "fashion_mnist_composite", "synthetic", "folder")
EVALUATION_SPLITS = ("test", "validation")
LOSSES = ("infonce", "ntxent")
# How the encoder is pretrained: "simclr" (the contrastive `loss` above, with negatives), or a
# method without negatives: "positives_only" (pull two views together: collapses), "simsiam"
# (a predictor on one branch, stop-gradient on the other) or "barlow_twins" (decorrelation).
METHODS = ("simclr", "positives_only", "simsiam", "barlow_twins")
DEFAULT_METHOD = "simclr"
RECIPES = ("reference", "paper")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
# Four valid 3x3 convolutions with stride 2 need 31 pixels; the synthetic shapes need 32.
MIN_IMAGE_SIZE = 32
# Upper bounds that keep a typo from drawing more images than memory holds, before any work:
# 256x256 is past every source's native size; the largest class of any source has 6,000
# training images, the largest unlabelled split 100,000 (STL-10), the largest test split 10,000.
MAX_IMAGE_SIZE, MAX_LABELS_PER_CLASS = 256, 6_000
MAX_UNLABELLED, MAX_TEST = 100_000, 10_000
MAX_SEED = 2**32 - 1  # what Keras' and NumPy's random seeds take
MAX_SYNTHETIC_GIB = 2  # the synthetic source draws every image in memory
SYNTHETIC_SIZES = {"unlabelled": 5000, "labelled_pool": 1000, "test": 1000}  # its defaults


class SettingError(ValueError):
    """A setting's value is of the wrong type or out of its range."""


def _expect(name: str, value, expected: str):
    raise SettingError(f"Expected {name} to be {expected}. Received: {name}={value!r}")


def _integer(name: str, value, low: int, high: int | None = None, optional=False) -> None:
    """An int (not a bool) in [low, high]; None too when optional."""
    if optional and value is None:
        return
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bounds = f">= {low:,}" if high is None else f"from {low:,} to {high:,}"
        _expect(name, value, f"{'None or ' if optional else ''}an integer {bounds}")


def _number(name: str, value, low: float, high: float | None = None, *, closed=(True, True)):
    """A finite int or float (not a bool) within low..high, ends closed or open as given."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    above = ok and (value >= low if closed[0] else value > low)
    below = ok and (high is None or (value <= high if closed[1] else value < high))
    if not (above and below):
        low_text = f"{'>=' if closed[0] else '>'} {low}"
        high_text = "" if high is None else f" and {'<=' if closed[1] else '<'} {high}"
        _expect(name, value, f"a finite number {low_text}{high_text}")


def _boolean(name: str, value) -> None:
    if not isinstance(value, bool):
        _expect(name, value, "true or false")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        _expect(name, value, f"one of {', '.join(map(repr, allowed))}")


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
    # source "folder": the folder of images to read (`simclr_lab.sources.folder`); None for
    # the others.
    folder: str | None = None

    def __post_init__(self):
        _choice("source", self.source, SOURCES)
        if self.source == "folder" and not (isinstance(self.folder, str) and self.folder):
            _expect("folder", self.folder, "the path of a folder of images when source='folder'")
        if self.source != "folder" and self.folder is not None:
            _expect("folder", self.folder, f"None when source={self.source!r} (set source=folder)")
        _choice("evaluate_on", self.evaluate_on, EVALUATION_SPLITS)
        if self.evaluate_on == "validation" and not self.source.startswith("fashion_mnist"):
            _expect("source", self.source, "a Fashion-MNIST source when evaluate_on='validation'")
        _integer("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        _integer("labels_per_class", self.labels_per_class, 1, MAX_LABELS_PER_CLASS, True)
        _integer("num_unlabelled", self.num_unlabelled, 1, MAX_UNLABELLED, True)
        _integer("num_test", self.num_test, 1, MAX_TEST, True)
        _integer("seed", self.seed, 0)
        if self.source == "synthetic":  # drawn in memory: refuse what would not fit
            count = (
                (self.num_unlabelled or SYNTHETIC_SIZES["unlabelled"])
                + 10 * (self.labels_per_class or SYNTHETIC_SIZES["labelled_pool"] // 10)
                + (self.num_test or SYNTHETIC_SIZES["test"])
            )
            gib = count * self.image_size**2 * 3 / 2**30
            if gib > MAX_SYNTHETIC_GIB:
                _expect(
                    "image_size",
                    self.image_size,
                    f"small enough for {count:,} synthetic images to fit in "
                    f"{MAX_SYNTHETIC_GIB} GiB (they would take {gib:.1f} GiB)",
                )


@dataclass(frozen=True)
class AugmentConfig:
    """One augmenter's strength (the reference's: flip, translate and zoom from min_area, then
    the colour affine)."""

    min_area: float = 0.25  # strong: a view keeps at least a quarter of the image
    brightness: float = 0.6  # strong: brightness scale drawn from [0.4, 1.6]
    jitter: float = 0.2  # strong: colour-mixing matrix entries drawn from [-0.2, 0.2]
    recipe: str = "reference"  # "paper": random resized crop, colour jitter, greyscale
    grayscale: float = 0.0  # chance of turning a view grey after the colour (the paper: 0.2)

    def __post_init__(self):
        _number("min_area", self.min_area, 0, 1, closed=(False, True))
        _number("brightness", self.brightness, 0, 1)
        _number("jitter", self.jitter, 0, 1)
        _choice("recipe", self.recipe, RECIPES)
        _number("grayscale", self.grayscale, 0, 1)


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
        _integer("width", self.width, 1, 4096)
        _boolean("projection_batchnorm", self.projection_batchnorm)
        _choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class PretrainConfig:
    """Contrastive pretraining with the online linear probe."""

    epochs: int = 20
    batch_size: int = 525  # (100,000 + 5,000) // 525 = 200 steps: 500 unlabelled + 25 labelled
    labelled_per_step: int | None = None  # None: the reference's L // steps; set it to repeat
    temperature: float = 0.1  # lower: sharper softmax, higher contrastive accuracy
    learnable_temperature: bool = False  # ALIGN: train log(temperature), starting at the above
    loss: str = "infonce"  # the reference's symmetric InfoNCE (N-1 negatives); or "ntxent"
    method: str = DEFAULT_METHOD  # "simclr" uses `loss` and `temperature`; see METHODS
    learning_rate: float = 1e-3  # Adam's default
    schedule: str = "constant"  # or "cosine" decay to zero
    warmup_fraction: float = 0.0  # share of all steps spent warming up (cosine only)
    augment: AugmentConfig = STRONG

    def __post_init__(self):
        _integer("epochs", self.epochs, 1, 10_000)
        _integer("batch_size", self.batch_size, 2, 65_536)
        if self.labelled_per_step is not None and self.labelled_per_step >= self.batch_size:
            raise SettingError(
                f"Expected labelled_per_step to be below batch_size={self.batch_size} (each "
                f"step's batch holds the labelled images too). Received: labelled_per_step="
                f"{self.labelled_per_step}; lower it, or raise batch_size."
            )
        _integer("labelled_per_step", self.labelled_per_step, 1, self.batch_size - 1, True)
        _number("temperature", self.temperature, 0, closed=(False, True))
        _boolean("learnable_temperature", self.learnable_temperature)
        _choice("loss", self.loss, LOSSES)
        _choice("method", self.method, METHODS)
        if self.learnable_temperature and self.method != DEFAULT_METHOD:
            _expect(
                "learnable_temperature",
                self.learnable_temperature,
                f"false when method={self.method!r} (a method without a temperature)",
            )
        _number("learning_rate", self.learning_rate, 0, closed=(False, True))
        _choice("schedule", self.schedule, SCHEDULES)
        _number("warmup_fraction", self.warmup_fraction, 0, 1, closed=(True, False))
        _section("augment", self.augment, AugmentConfig)


@dataclass(frozen=True)
class SupervisedConfig:
    """The baseline and the finetuning: the weak augmenter, Adam, sparse cross-entropy."""

    epochs: int = 20
    batch_size: int | None = None  # None: the pretraining's labelled images per step (25)
    learning_rate: float = 1e-3
    augment: AugmentConfig = WEAK
    # None: one pass over the labels an epoch. A number gives every label budget the same
    # optimisation steps an epoch (the label sweep), the labels repeating as needed.
    steps_per_epoch: int | None = None

    def __post_init__(self):
        _integer("epochs", self.epochs, 1, 10_000)
        _integer("batch_size", self.batch_size, 1, 65_536, True)
        _integer("steps_per_epoch", self.steps_per_epoch, 1, 100_000, True)
        _number("learning_rate", self.learning_rate, 0, closed=(False, True))
        _section("augment", self.augment, AugmentConfig)


# More devices than any one mesh is likely to have: a typo, refused before JAX is asked.
MAX_DEVICES = 4096


@dataclass(frozen=True)
class DistributeConfig:
    """Data-parallel training (JAX backend, `simclr_lab.runs.distribute`). The batch sizes
    above are global batches: each step's batch is split evenly over the devices, and the
    loss, the contrastive accuracy and BatchNorm's statistics see the whole of it."""

    devices: int | str = 1  # 1: one device; N or "all": data-parallel over N or all devices

    def __post_init__(self):
        count = isinstance(self.devices, int) and not isinstance(self.devices, bool)
        if self.devices != "all" and not (count and 1 <= self.devices <= MAX_DEVICES):
            _expect("devices", self.devices, f"'all' or an integer from 1 to {MAX_DEVICES:,}")


def _section(name: str, value, kind) -> None:
    if not isinstance(value, kind):
        _expect(name, value, f"a section ({kind.__name__}), set field by field")


def _first_field(kind) -> str:
    return dataclasses.fields(kind)[0].name


@dataclass(frozen=True)
class Config:
    """A whole comparison: data, model, pretraining, and the two supervised runs."""

    name: str = "reference"
    description: str = (
        "The Keras example's recipe on STL-10 at 96x96, for a GPU: downloads 2.6 GB on first "
        "use, then trains 3 phases of 20 epochs (about 12 minutes on the example's GPU)."
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)
    seed: int = 0  # weight initialisation and augmentation randomness
    # Where it runs, not what it computes: no part of cache keys (`key_dict`).
    distribute: DistributeConfig = field(default_factory=DistributeConfig)
    # Load a run shipped with the package (encoder, baseline, finetuning: `runs.shipped`) or
    # the shipped sweep results (`sweep.run_sweep`) when the settings match and no local
    # result exists; False trains and computes here. Not part of cache keys either.
    use_shipped: bool = True

    def __post_init__(self):
        for name, kind in _SECTIONS.items():
            _section(name, getattr(self, name), kind)
        _integer("seed", self.seed, 0, MAX_SEED)
        _boolean("use_shipped", self.use_shipped)

    def replace(self, **changes) -> Config:
        """A copy with dotted fields changed: `cfg.replace(**{"pretrain.epochs": 2})`."""
        return _replace_dotted(self, changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key_dict(self, *sections: str) -> dict:
        """The settings that change a result, for cache keys (name/description excluded)."""
        full = self.to_dict()
        chosen = sections or ("data", "model", "pretrain", "supervised", "seed")
        if "data" in full:  # a folder's images are keyed by their content, not by its path
            full["data"] = {k: v for k, v in full["data"].items() if k != "folder"}
        return {name: full[name] for name in chosen}


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "pretrain": PretrainConfig,
    "supervised": SupervisedConfig,
    "distribute": DistributeConfig,
}


def _replace_dotted(obj, changes: dict, prefix: str = ""):
    """`dataclasses.replace` over dotted names; an error names the whole dotted setting."""
    direct, nested = {}, {}
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in fields:
            raise SettingError(
                f"Unknown setting {prefix + key!r}; {prefix.rstrip('.') or 'the config'} has: "
                f"{', '.join(sorted(fields))}."
            )
        is_section = dataclasses.is_dataclass(getattr(obj, head))
        if rest and not is_section:
            raise SettingError(
                f"{prefix + head!r} is a setting, not a section: {prefix + key!r} does not "
                f"exist. Set it as {prefix + head}=VALUE."
            )
        if not rest and is_section:
            names = ", ".join(f.name for f in dataclasses.fields(getattr(obj, head)))
            raise SettingError(
                f"{prefix + head!r} is a section, not a value: set one of its fields "
                f"({names}), e.g. {prefix + head}.{_first_field(type(getattr(obj, head)))}=... "
                f"Received: {prefix + head}={value!r}"
            )
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = _replace_dotted(getattr(obj, head), sub, f"{prefix}{head}.")
    try:
        return dataclasses.replace(obj, **direct)
    except SettingError as error:  # name the dotted setting, as the user wrote it
        text = str(error)
        for head in fields:  # also a field the change did not set, checked against one it did
            text = text.replace(f"Expected {head} ", f"Expected {prefix + head} ").replace(
                f"Received: {head}=", f"Received: {prefix + head}="
            )
        raise SettingError(text) from None
