"""`simclr-lab`: the whole comparison headless, and what this machine offers.

simclr-lab compare --preset cpu --out runs/cpu
simclr-lab pretrain --data my_images --out runs/mine --export encoder.keras
simclr-lab compare --data my_images --out runs/mine-compare
simclr-lab sweep --preset cpu --out runs/sweep
simclr-lab compare --preset smoke --devices all    (data-parallel: KERAS_BACKEND=jax)
simclr-lab info
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from simclr_lab import _import_keras_quietly
from simclr_lab.faces.arguments import build_parser, parse_setting
from simclr_lab.runs.cache import check_writable_dir
from simclr_lab.runs.presets import PRESET_ENV_VAR


def _config(args):
    """The preset with --data, --set and --devices applied, once the processes have joined."""
    from simclr_lab.runs.distribute import initialize
    from simclr_lab.runs.presets import get_preset
    from simclr_lab.sources.folder import folder_settings

    initialize(  # before JAX lists devices
        args.coordinator, args.processes, args.process_id, timeout=args.join_timeout
    )
    changes = folder_settings(args.data) if getattr(args, "data", None) else {}
    changes.update(parse_setting(s) for s in args.set)  # --set wins
    if args.devices is not None:
        changes["distribute.devices"] = args.devices
    return get_preset(args.preset, **changes)


def _compare(args) -> None:
    from simclr_lab.studies.compare import run_comparison

    config = _config(args)
    print(f"Preset {config.name!r}: {config.description}")
    run_comparison(config, args.out, args.cache_dir, verbose=0 if args.quiet else 2)


def _pretrain(args) -> None:
    from simclr_lab.studies.own_images import run_pretraining

    config = _config(args)
    verbose = 0 if args.quiet else 2
    run_pretraining(
        config, args.out, args.cache_dir, args.export, verbose=verbose, overwrite_export=False
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"simclr-lab: warning: {message}", file=sys.stderr)  # one line, as errors are


def _sweep(args) -> None:
    from simclr_lab.studies.sweep import run_sweep

    if args.seeds < 1 or args.supervised_seeds < 0:
        raise ValueError(
            f"--seeds {args.seeds} must be at least 1 and --supervised-seeds "
            f"{args.supervised_seeds} at least 0."
        )
    for flag, budgets in (
        ("--labels-per-class", args.labels_per_class),
        ("--supervised-labels-per-class", args.supervised_labels_per_class),
    ):
        wrong = [n for n in budgets or () if n < 1]
        if wrong:
            raise ValueError(f"{flag} {wrong[0]}: every budget must be at least 1 label a class.")
    config = _config(args)
    run_sweep(
        config,
        args.out,
        args.cache_dir,
        args.labels_per_class,
        args.seeds,
        supervised_per_class=args.supervised_labels_per_class,
        supervised_draws=args.supervised_seeds,
    )


def _study(args) -> None:
    from simclr_lab.runs.presets import get_preset
    from simclr_lab.studies import study

    points = [study.parse_point(p) for p in args.point] if args.point else study.grid()
    seeds = []
    for text in args.seed:  # all checked before any training
        if not str(text).isdigit():
            raise study.StudyError(f"--seed {text!r} must be an integer >= 0.")
        seeds.append(int(text))
    epochs = None
    if args.epochs is not None:
        if not str(args.epochs).isdigit() or int(args.epochs) < 1:
            raise study.StudyError(f"--epochs {args.epochs!r} must be an integer >= 1.")
        epochs = int(args.epochs)
    args.preset = args.preset or os.environ.get(PRESET_ENV_VAR) or "cpu"
    get_preset(args.preset)  # an unknown preset is refused before any training
    results = Path(args.results or study.own_results_path(args.cache_dir))
    if results.is_dir():
        raise study.StudyError(f"--results {str(results)!r} is a folder; name a .jsonl file.")
    check_writable_dir(results.parent, "--results folder")
    rows = []
    for knob, value in points:
        for seed in seeds:
            row = study.run_point(knob, value, seed, args.preset, epochs, args.cache_dir)
            study.append(row, results)
            rows.append(row)
    summary = study.summarise([{**row, "source": "yours"} for row in rows])
    print(f"\n{study.study_table(summary)}\n\nAppended {len(rows)} rows to {results}")


def _bench(args) -> None:
    from simclr_lab.studies.bench import bench_table, run_bench

    if args.batch < 26 or args.steps < 1 or args.warmup < 0 or args.devices < 1:
        raise ValueError(
            f"--batch {args.batch} --steps {args.steps} --warmup {args.warmup} --devices "
            f"{args.devices}: the batch must exceed its 25 labelled images, steps and devices "
            f"be >= 1 and warmup >= 0."
        )
    result = run_bench(
        args.size, args.batch, 25, args.steps, args.warmup, args.precision, devices=args.devices
    )
    print(bench_table(result))


def _info(args) -> None:
    from simclr_lab import __version__
    from simclr_lab.runs.cache import default_cache_dir
    from simclr_lab.runs.devices import describe
    from simclr_lab.runs.distribute import describe_visible, spread, visible_devices
    from simclr_lab.runs.presets import default_preset_name, get_preset
    from simclr_lab.sources import data

    print(f"simclr-lab {__version__}: {describe()}")
    print(describe_visible())
    print(f"default preset here: {default_preset_name()}")
    if visible_devices():  # JAX: what --devices makes of the default preset's batch
        preset = get_preset(**{"distribute.devices": args.devices})
        where = spread(preset).describe(preset.pretrain.batch_size)
        print(f"--devices {args.devices}: {where} ({preset.name}'s pretrain.batch_size)")
    print(f"cache: {default_cache_dir()}")
    print("data sources:")
    print("  synthetic      always (drawn in code)")
    try:
        folder = data.find_fashion_mnist()
        where = f"found in {folder}" if folder else "not found; Keras downloads it when online"
    except (data.DataNotFoundError, ValueError) as error:
        where = f"unusable: {error}"
    print(f"  fashion_mnist  {where}")
    print("  fashion_mnist_composite  drawn from fashion_mnist (above) in code, seeded")
    print("  folder         your own images: --data PATH (pretrain, compare)")
    try:
        import tensorflow_datasets as tfds

        prepared = tfds.builder("stl10").is_prepared()
        print(f"  stl10          {'prepared' if prepared else 'downloads (~2.6 GB) when online'}")
    except ImportError:
        print("  stl10          needs tensorflow-datasets")


def _simulate_cpu_devices(count: int) -> None:
    """Lets JAX's CPU platform show `count` devices (XLA's flag, read once, when JAX starts),
    unless XLA_FLAGS already sets a count or JAX has started. A GPU's devices are unchanged."""
    flag = "--xla_force_host_platform_device_count"
    if flag not in os.environ.get("XLA_FLAGS", "") and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}={count}".strip()


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # --help and bad arguments end here, before Keras loads
    if args.command == "bench" and args.devices > 1:
        _simulate_cpu_devices(args.devices)
    _import_keras_quietly()
    commands = {"compare": _compare, "pretrain": _pretrain, "sweep": _sweep, "study": _study}
    commands.update(bench=_bench, info=_info)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            commands[args.command](args)
    except KeyboardInterrupt:
        print(
            "simclr-lab: interrupted; finished epochs are kept and resume next time.",
            file=sys.stderr,
        )
        return 130
    except Exception as error:  # one readable line unless --debug
        if args.debug:
            raise
        print(f"simclr-lab: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
