"""Bad input, counted: each case must fail with the right exception type and a message that
names the bad value, before any long work starts."""

import contextlib
import gzip
import io
import json
import os
import re

import keras
import numpy as np
import pytest
from PIL import Image

from simclr_lab import augment, config, evaluate, loss
from simclr_lab.encoder import get_encoder
from simclr_lab.faces import cli
from simclr_lab.faces.dashboard import LiveDashboard
from simclr_lab.figures import plots
from simclr_lab.runs import distribute, presets, shipped
from simclr_lab.runs.cache import file_sha256
from simclr_lab.sources import composite, data, synthetic
from simclr_lab.sources.batching import plan_batches, plan_unlabelled_batches
from simclr_lab.sources.splits import balanced_subset


class CLIError(Exception):
    """What `simclr-lab` printed when it exited with status 2."""


def run_cli(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(args))
    lines = err.getvalue().strip().splitlines()
    if code == 2 and len(lines) == 1 and "Traceback" not in err.getvalue():
        raise CLIError(lines[0])
    raise AssertionError(f"expected one error line and exit 2, got {code}: {err.getvalue()!r}")


def _gzip_file(tmp, payload: bytes):
    path = tmp / "broken-idx.gz"
    with gzip.open(path, "wb") as file:
        file.write(payload)
    return path


def _setting(key, value):
    """What `--set key=value` asks for, through the same door as the CLI."""
    return lambda t: presets.get_preset("smoke", **{key: value})


def _uint8(*shape):
    return np.zeros(shape, "uint8")


CASES = [
    # config
    ("unknown preset", lambda t: presets.get_preset("gpu"), ValueError, "'gpu'"),
    ("unknown source", lambda t: config.DataConfig(source="mnist"), ValueError, "'mnist'"),
    (
        "zero temperature",
        lambda t: config.PretrainConfig(temperature=0),
        ValueError,
        "temperature=0",
    ),
    (
        "negative temperature",
        lambda t: config.PretrainConfig(temperature=-0.5),
        ValueError,
        "temperature=-0.5",
    ),
    ("min_area zero", lambda t: config.AugmentConfig(min_area=0), ValueError, "min_area=0"),
    ("grayscale above 1", lambda t: config.AugmentConfig(grayscale=1.5), ValueError, "1.5"),
    (
        "unknown evaluation split",
        lambda t: config.DataConfig(evaluate_on="dev"),
        ValueError,
        "'dev'",
    ),
    (
        "validation split of a source without spare labels",
        lambda t: config.DataConfig(source="synthetic", evaluate_on="validation"),
        ValueError,
        "'synthetic'",
    ),
    ("unknown precision", lambda t: config.ModelConfig(precision="fp8"), ValueError, "'fp8'"),
    (
        "composite of wrong-shaped images",
        lambda t: composite.render_composite(_uint8(2, 32, 32), seed=0),
        ValueError,
        "(2, 32, 32)",
    ),
    (
        "min_area above one",
        lambda t: config.AugmentConfig(min_area=1.2),
        ValueError,
        "min_area=1.2",
    ),
    (
        "negative brightness",
        lambda t: config.AugmentConfig(brightness=-1),
        ValueError,
        "brightness=-1",
    ),
    ("negative jitter", lambda t: config.AugmentConfig(jitter=-0.1), ValueError, "jitter=-0.1"),
    ("width zero", lambda t: config.ModelConfig(width=0), ValueError, "width=0"),
    ("image too small", lambda t: config.DataConfig(image_size=30), ValueError, "image_size=30"),
    (
        "image size as text",
        lambda t: config.DataConfig(image_size="32"),
        ValueError,
        "image_size='32'",
    ),
    ("unknown loss", lambda t: config.PretrainConfig(loss="triplet"), ValueError, "'triplet'"),
    ("unknown schedule", lambda t: config.PretrainConfig(schedule="step"), ValueError, "'step'"),
    ("unknown recipe", lambda t: config.AugmentConfig(recipe="byol"), ValueError, "'byol'"),
    (
        "labelled batch fills the batch",
        lambda t: config.PretrainConfig(batch_size=525, labelled_per_step=600),
        ValueError,
        "labelled_per_step=600",
    ),
    (
        "zero labels per class",
        lambda t: config.DataConfig(labels_per_class=0),
        ValueError,
        "labels_per_class=0",
    ),
    (
        "unknown setting",
        lambda t: presets.get_preset("smoke", **{"pretrain.epoch": 3}),
        ValueError,
        "'pretrain.epoch'",
    ),
    # settings as `--set` gives them (JSON values, else text): one line naming the key
    *[
        (f"--set {key}={value!r}", _setting(key, value), ValueError, named)
        for key, value, named in [
            ("pretrain.temperature", True, r"pretrain.temperature to be a finite number > 0"),
            ("pretrain.temperature", float("inf"), r"Received: pretrain.temperature=inf"),
            ("pretrain.epochs", True, r"pretrain.epochs to be an integer"),
            ("model.projection_batchnorm", "abc", r"projection_batchnorm to be true or false"),
            ("pretrain.learnable_temperature", "maybe", r"true or false.*'maybe'"),
            ("data.image_size", 1e3, r"data.image_size to be an integer from 32 to 256"),
            ("pretrain.epochs.x", 1, r"'pretrain.epochs' is a setting, not a section"),
            ("pretrain", 1, r"'pretrain' is a section, not a value"),
            ("pretrain.augment", 5, r"'pretrain.augment' is a section, not a value"),
            ("pretrain.warmup_fraction", "abc", r"warmup_fraction to be a finite number >= 0"),
            ("data.seed", "abc", r"data.seed to be an integer >= 0. Received: data.seed='abc'"),
            ("data.labels_per_class", 100000, r"labels_per_class to be None or an integer"),
            ("data.image_size", 31, r"from 32 to 256. Received: data.image_size=31"),
            ("supervised.augment.min_area", "big", r"supervised.augment.min_area to be a"),
            ("distribute.devices", "two", r"distribute.devices to be 'all' or an integer"),
            ("distribute.devices", 0, r"from 1 to 4,096. Received: distribute.devices=0"),
        ]
    ],
    (
        "synthetic images that would not fit in memory",
        lambda t: config.DataConfig(source="synthetic", image_size=256, num_unlabelled=50_000),
        ValueError,
        "52,000 synthetic images to fit in 2 GiB",
    ),
    (
        "cli setting of the wrong type, before any data is loaded",
        lambda t: run_cli("compare", "--preset", "cpu", "--set", "pretrain.epochs=true"),
        CLIError,
        "Received: pretrain.epochs=True",
    ),
    (
        "cli out that cannot be written is named as out",
        lambda t: run_cli("compare", "--preset", "smoke", "--out", "/etc/hostname/sub"),
        CLIError,
        "out='/etc/hostname/sub' cannot be written",
    ),
    # several devices (those that need JAX's devices are in tests/test_distribute.py)
    ("devices as a word", lambda t: config.DistributeConfig(devices="many"), ValueError, "many"),
    (
        "pretraining batch that does not split over the devices",
        lambda t: distribute.check_batches(
            presets.get_preset("smoke", **{"pretrain.batch_size": 127}), 2, (111, 16)
        ),
        ValueError,
        r"pretrain.batch_size=127 is 111 unlabelled \+ 16 labelled images a step",
    ),
    (
        "supervised batch that does not split over the devices",
        lambda t: distribute.check_batches(
            presets.get_preset("smoke", **{"supervised.batch_size": 25}), 2, supervised=25
        ),
        ValueError,
        "supervised.batch_size=25 does not split evenly over 2 devices",
    ),
    (
        "process id without a coordinator",
        lambda t: distribute.initialize(None, 2, 1),
        ValueError,
        "without a coordinator",
    ),
    (
        "cli devices that are not a count",
        lambda t: run_cli("compare", "--preset", "smoke", "--devices", "two", "--out", str(t)),
        CLIError,
        "Received: distribute.devices='two'",
    ),
    (
        "cli processes without a coordinator",
        lambda t: run_cli("compare", "--processes", "2", "--process-id", "1", "--out", str(t)),
        CLIError,
        "without a coordinator",
    ),
    # data
    (
        "more labels than a class has",
        lambda t: balanced_subset(np.repeat(np.arange(10), 5), 6, 10, 0),
        ValueError,
        "labels_per_class=6",
    ),
    (
        "fewer labels than classes leave 0 a step",
        lambda t: plan_batches(60_000, 100, 525),
        ValueError,
        "batch_size=525",
    ),
    (
        "truncated IDX file",
        lambda t: data.read_idx(_gzip_file(t, b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" * 3)),
        ValueError,
        "broken-idx.gz is truncated",
    ),
    (
        "IDX file of the wrong type",
        lambda t: data.read_idx(_gzip_file(t, b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")),
        ValueError,
        "broken-idx.gz is not an IDX file",
    ),
    (
        "synthetic images too small",
        lambda t: synthetic.make_shapes(10, 16),
        ValueError,
        "image_size=16",
    ),
    ("encoder input too small", lambda t: get_encoder(128, 30), ValueError, "image_size=30"),
    # augment
    (
        "colour affine negative brightness",
        lambda t: augment.RandomColorAffine(-0.2, 0.1),
        ValueError,
        "brightness=-0.2",
    ),
    (
        "augmenter min_area zero",
        lambda t: augment.get_augmenter(0, 0.6, 0.2),
        ValueError,
        "min_area=0",
    ),
    (
        "random apply rate above one",
        lambda t: augment.RandomApply(augment.RandomColorAffine(), rate=1.5),
        ValueError,
        "rate=1.5",
    ),
    # loss
    ("unknown loss name", lambda t: loss.get_loss("nce"), ValueError, "'nce'"),
    # evaluate
    (
        "k zero",
        lambda t: evaluate.knn_predict(np.ones((4, 2)), np.arange(4), np.ones((1, 2)), k=0),
        ValueError,
        "k=0",
    ),
    (
        "k above the training set",
        lambda t: evaluate.knn_predict(np.ones((4, 2)), np.arange(4), np.ones((1, 2)), k=5),
        ValueError,
        "k=5",
    ),
    (
        "float images to encode",
        lambda t: evaluate.encode(get_encoder(4, 32), np.zeros((2, 32, 32, 3), "float32")),
        ValueError,
        "float32",
    ),
    (
        "grey images to encode",
        lambda t: evaluate.encode(get_encoder(4, 32), _uint8(2, 32, 32)),
        ValueError,
        r"\(2, 32, 32\)",
    ),
    (
        "empty features",
        lambda t: evaluate.linear_probe_accuracy(np.zeros((0, 3)), [], np.ones((2, 3)), [0, 1]),
        ValueError,
        r"\(0, 3\)",
    ),
    (
        "features and labels of other lengths",
        lambda t: evaluate.knn_accuracy(np.ones((3, 2)), [0, 1], np.ones((2, 2)), [0, 1]),
        ValueError,
        "3 feature rows but 2 labels",
    ),
    ("kNN monitor every 0", lambda t: evaluate.KNNMonitor(None, every=0), ValueError, "every=0"),
    # widgets and plots
    (
        "explorer with float images",
        lambda t: __import__("simclr_lab.faces.widgets").faces.widgets.AugmentationExplorer(
            np.zeros((2, 32, 32, 3), "float32")
        ),
        ValueError,
        "float32",
    ),
    (
        "temperature explorer, mismatched views",
        lambda t: __import__("simclr_lab.faces.widgets").faces.widgets.TemperatureExplorer(
            np.ones((4, 3)), np.ones((5, 3))
        ),
        ValueError,
        r"\(5, 3\)",
    ),
    (
        "dashboard update_every 0",
        lambda t: LiveDashboard(update_every=0),
        ValueError,
        "update_every=0",
    ),
    (
        "unknown embedding method",
        lambda t: plots.plot_embedding(np.ones((5, 2)), np.arange(5), method="umap"),
        ValueError,
        "'umap'",
    ),
    # CLI: one line, exit status 2, nothing trained
    ("cli unknown preset", lambda t: run_cli("compare", "--preset", "nope"), CLIError, "'nope'"),
    (
        "cli bad temperature",
        lambda t: run_cli(
            "compare", "--preset", "smoke", "--set", "pretrain.temperature=0", "--out", str(t)
        ),
        CLIError,
        "temperature=0",
    ),
    (
        "cli malformed --set",
        lambda t: run_cli("compare", "--preset", "smoke", "--set", "epochs"),
        CLIError,
        "'epochs'",
    ),
    (
        "cli out is a file",
        lambda t: run_cli("compare", "--preset", "smoke", "--out", str(_gzip_file(t, b""))),
        CLIError,
        "broken-idx.gz",
    ),
    (
        "cli out cannot be written",
        lambda t: run_cli("compare", "--preset", "smoke", "--out", "/proc/simclr-lab-run"),
        CLIError,
        "/proc/simclr-lab-run",
    ),
    (
        "cli sweep with zero seeds",
        lambda t: run_cli("sweep", "--preset", "smoke", "--seeds", "0", "--out", str(t)),
        CLIError,
        "--seeds 0",
    ),
    # what a hostile probe found: one line naming the setting, before any work
    ("--set name", _setting("name", "x"), config.SettingError, "'name' is the preset's name"),
    ("seed past 2**32", _setting("seed", 2**32), config.SettingError, "seed.*4,294,967,295"),
    (
        "a batch no larger than its labelled part",
        _setting("pretrain.batch_size", 16),
        config.SettingError,
        r"pretrain\.labelled_per_step to be below batch_size=16",
    ),
    (
        "precision from the environment",
        lambda t: _with_env("SIMCLR_LAB_PRECISION", "half", lambda: presets.get_preset("smoke")),
        config.SettingError,
        r"\$SIMCLR_LAB_PRECISION: .*model\.precision",
    ),
    (
        "devices from the environment",
        lambda t: _with_env("SIMCLR_LAB_DEVICES", "-3", lambda: presets.get_preset("smoke")),
        config.SettingError,
        r"\$SIMCLR_LAB_DEVICES: .*distribute\.devices",
    ),
    (
        "pretraining on one image",
        lambda t: plan_unlabelled_batches(1, 16),
        ValueError,
        "at least 2 images.*there is 1",
    ),
    (
        "a class without labelled images",
        lambda t: balanced_subset(np.array([0, 0, 2, 2]), 1, 3, 0),
        ValueError,
        "class 1 has no labelled images",
    ),
    *[
        (
            f"cli sweep {flag} {value}",
            lambda t, flag=flag, value=value: run_cli(
                "sweep", "--preset", "smoke", flag, value, "--out", str(t)
            ),
            CLIError,
            f"{flag} {value}: every budget must be at least 1",
        )
        for flag, value in (
            ("--labels-per-class", "0"),
            ("--labels-per-class", "-5"),
            ("--supervised-labels-per-class", "0"),
        )
    ],
    (
        "cli study results into a folder",
        lambda t: run_cli("study", "--point", "temperature=0.5", "--results", str(t)),
        CLIError,
        "is a folder; name a .jsonl file",
    ),
    (
        "cli export over an existing file",
        lambda t: run_cli(
            "pretrain",
            "--data",
            str(_two_images(t / "images")),
            "--preset",
            "smoke",
            "--out",
            str(t / "out"),
            "--export",
            str(_existing(t / "mine.keras")),
        ),
        CLIError,
        "exists already",
    ),
    (
        "a shipped run whose weights are no Keras weights file",
        lambda t: _foreign_shipped_run(t).load(keras.Sequential([keras.layers.Dense(2)]), 1),
        shipped.DamagedShippedRun,
        "model.weights.h5 does not load into this model",
    ),
]


def _with_env(name, value, call):
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        return call()
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


def _two_images(folder):
    folder.mkdir(parents=True)
    for index in range(2):
        Image.new("RGB", (40, 40), (index * 100, 0, 0)).save(folder / f"{index}.png")
    return folder


def _existing(path):
    path.write_bytes(b"the learner's own file")
    return path


def _foreign_shipped_run(folder):
    """A shipped run whose weights file is an npz of pickled objects (what the package
    shipped before it used Keras' own format), checksums recomputed so that only the loading
    can tell: it is refused, naming the run, and never unpickled."""
    with open(folder / "model.weights.h5", "wb") as file:
        np.savez(file, w0=np.array([{"a": 1}], dtype=object))
    for name in ("settings.json", "history.json", "about.json"):
        (folder / name).write_text('{"loss": [1.0]}' if name == "history.json" else "{}")
    sums = {name: file_sha256(folder / name) for name in shipped.FILES}
    (folder / "checksums.json").write_text(json.dumps(sums))
    return shipped.ShippedRun(folder)


@pytest.mark.parametrize("case, call, error, named", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(case, call, error, named, tmp_path):
    with pytest.raises(error, match=named) as info:
        call(tmp_path)
    assert re.search(named, str(info.value))


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25
