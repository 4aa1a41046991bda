"""The `simclr-lab` command line: every subcommand, its options with their defaults, and an
example of each (`build_parser`); what each command runs is in `faces.cli`."""

from __future__ import annotations

import argparse
import json

from simclr_lab import __version__
from simclr_lab.runs.presets import PRESETS


def parse_setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(
            f"--set {text!r} must look like section.field=value, e.g. pretrain.epochs=2."
        )
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _devices(text: str):
    """--devices: "all" or a count; anything else goes on to the setting, which names it."""
    return int(text) if text.isdigit() else text


def _add_device_flags(parser) -> None:
    parser.add_argument(
        "--devices",
        type=_devices,
        default=None,
        metavar="all|N",
        help="train data-parallel over N devices or all (JAX backend); the preset's batch "
        "sizes are the global batches (sets distribute.devices; default 1)",
    )
    parser.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="several processes: process 0's address (else $KERAS_DISTRIBUTION_JOB_ADDRESSES)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="several processes: how many (else $KERAS_DISTRIBUTION_NUM_PROCESSES)",
    )
    parser.add_argument(
        "--process-id",
        type=int,
        default=None,
        help="several processes: this one's, 0 to N-1 (else $KERAS_DISTRIBUTION_PROCESS_ID)",
    )
    parser.add_argument(
        "--join-timeout",
        type=int,
        default=300,
        metavar="SECONDS",
        help="several processes: how long each waits for the others (default 300)",
    )


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default and keeps the examples' lines."""


def _example(lines: str) -> str:
    return f"example:\n  {lines}"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line. Long because: one table of every subcommand and option,
    read top to bottom as `--help` prints it."""
    parser = argparse.ArgumentParser(
        prog="simclr-lab", description="SimCLR pretraining vs a supervised baseline, headless."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"simclr-lab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    # What compare and sweep both take: the preset, its changes, the cache, the devices.
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument(
        "--preset",
        default=None,
        help=f"one of {', '.join(PRESETS)} (default: "
        "$SIMCLR_LAB_PRESET, else cpu; reference is the Keras example on STL-10, for a GPU)",
    )
    run.add_argument(
        "--cache-dir", default=None, help="trained runs (default ~/.cache/simclr_lab)"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a setting, e.g. --set pretrain.epochs=2 (repeatable)",
    )
    _add_device_flags(run)

    compare = commands.add_parser(
        "compare",
        formatter_class=_Formatter,
        epilog=_example("""simclr-lab compare --preset cpu --out runs/cpu
  simclr-lab compare --preset cpu --set use_shipped=false --set pretrain.epochs=20"""),
        parents=[run],
        help="baseline -> pretraining -> finetuning -> frozen-feature evaluation",
    )
    compare.add_argument("--out", default="runs/latest", help="folder for metrics and plots")
    compare.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    data_help = (
        "a folder of your own images instead of the preset's data: flat (no labels) or one "
        "subfolder per class (sets data.source=folder and data.folder)"
    )
    compare.add_argument("--data", default=None, metavar="PATH", help=data_help)

    pretrain = commands.add_parser(
        "pretrain",
        formatter_class=_Formatter,
        epilog=_example(
            "simclr-lab pretrain --data my_images --preset cpu --out runs/mine "
            "--export my_encoder.keras"
        ),
        parents=[run],
        help="pretrain on a folder of your own images; nearest neighbours, a map, the encoder",
    )
    pretrain.add_argument("--data", required=True, metavar="PATH", help=data_help)
    pretrain.add_argument(
        "--out", required=True, help="folder for metrics.json, gallery.png and map.png"
    )
    pretrain.add_argument(
        "--export",
        default=None,
        metavar="FILE.keras",
        help="write the encoder with its preprocessing (keras.saving.load_model reads it "
        "without simclr-lab)",
    )
    pretrain.add_argument("--quiet", action="store_true", help="no per-epoch lines")

    sweep = commands.add_parser(
        "sweep",
        formatter_class=_Formatter,
        epilog=_example(
            """simclr-lab sweep --preset cpu --out runs/sweep --labels-per-class 1 10 100"""
        ),
        parents=[run],
        help="kNN and linear probe vs labels per class: SimCLR, random encoder, pixels",
    )
    sweep.add_argument("--out", default="runs/sweep", help="folder for sweep.json/.md/.png")
    sweep.add_argument(
        "--labels-per-class",
        type=int,
        nargs="+",
        default=None,
        help="budgets to try (default 1 5 10 50 100, as the data allows)",
    )
    sweep.add_argument("--seeds", type=int, default=3, help="label draws per budget")
    sweep.add_argument(
        "--supervised-labels-per-class",
        type=int,
        nargs="+",
        default=None,
        help="budgets for the baseline and the finetuned encoder (default 1 10 100)",
    )
    sweep.add_argument(
        "--supervised-seeds",
        type=int,
        default=3,
        help="label draws for the baseline and the finetuned encoder (0: none; each draw "
        "and budget is two training runs of the preset's supervised steps)",
    )

    study = commands.add_parser(
        "study",
        formatter_class=_Formatter,
        epilog=_example("""simclr-lab study --point temperature=0.5 --seed 1 --epochs 4"""),
        help="one knob at a time (temperature, crop, colour, greyscale, batch size): "
        "contrastive vs frozen accuracy, appended to a results file",
    )
    study.add_argument(
        "--point",
        action="append",
        default=None,
        metavar="KNOB=VALUE",
        help="e.g. temperature=0.5 (repeatable; default: the whole grid, studies.study.KNOBS)",
    )
    study.add_argument("--seed", nargs="+", default=["0"], help="seeds (default 0)")
    study.add_argument(
        "--preset",
        default=None,
        help="the preset the knobs move (default: $SIMCLR_LAB_PRESET, else cpu)",
    )
    study.add_argument("--epochs", default=None, help="pretraining epochs (default: the preset's)")
    study.add_argument(
        "--cache-dir", default=None, help="trained runs (default ~/.cache/simclr_lab)"
    )
    study.add_argument(
        "--results",
        default=None,
        help="JSON-lines file the rows are appended to (default: study.jsonl in the cache "
        "folder, which simclr_lab.studies.study.load() reads beside the shipped rows)",
    )

    bench = commands.add_parser(
        "bench",
        formatter_class=_Formatter,
        epilog=_example(
            """simclr-lab bench --size 32 --precision auto
  KERAS_BACKEND=jax simclr-lab bench --devices 2"""
        ),
        help="images/s of the pretraining step, part by part",
    )
    bench.add_argument("--size", type=int, default=32, help="image size (96: the reference)")
    bench.add_argument("--batch", type=int, default=525, help="images a step (525: 500 + 25)")
    bench.add_argument("--steps", type=int, default=10, help="timed steps per part")
    bench.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    bench.add_argument("--precision", default="float32", help="float32, mixed_bfloat16 or auto")
    bench.add_argument(
        "--devices",
        type=int,
        default=1,
        metavar="N",
        help="time the step data-parallel over N devices, --batch images on each (JAX; on a "
        "CPU, N simulated devices)",
    )

    info = commands.add_parser(
        "info",
        formatter_class=_Formatter,
        epilog=_example("""simclr-lab info"""),
        help="backend, devices and the data sources found here",
    )
    info.add_argument(
        "--devices",
        type=_devices,
        default="all",
        metavar="all|N",
        help="the devices whose global batch to show (default all)",
    )
    for command in (compare, pretrain, sweep, study, bench, info):  # --debug after it too
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser
