"""Ship a preset's finished runs inside the package (`simclr_lab/shipped/`), and its label
sweep's results (`simclr_lab/shipped/sweep_results.json`).

    python benchmarks/ship_runs.py --preset cpu
    python benchmarks/ship_runs.py --phase finetuning --set supervised.learning_rate=1e-4
    python benchmarks/ship_runs.py --preset cpu --phase pretraining --set pretrain.epochs=48
    python benchmarks/ship_runs.py --preset cpu --sweep

Every run is the project's own (`train.pretrain`, `train.train_baseline`, `train.finetune`,
`sweep.run_sweep`), loaded from the local cache: one that is not finished there is refused,
unless `--train` says training it now is fine. A shipped run holds its weights without
optimizer state, its cache key, history and checksums, and `about.json`: where it ran, in
which precision, how long (when trained now, or `--seconds-from` a `compare` metrics.json that
trained it, or `--seconds`), its accuracy and, for a pretraining, its frozen features' kNN and
linear-probe accuracy measured in float32, so a learner's machine can check them
(tests/test_shipped.py). The sweep's record is the one `run_sweep` returns, with the settings
it was made with, for lesson 6's budgets (1, 10 and the preset's labels a class).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simclr_lab  # noqa: E402  (first: quiet TensorFlow start-up)
from simclr_lab import evaluate  # noqa: E402
from simclr_lab.faces.arguments import parse_setting  # noqa: E402
from simclr_lab.runs import devices, shipped, train  # noqa: E402
from simclr_lab.runs.cache import atomic_write_text  # noqa: E402
from simclr_lab.sources.data import load_splits  # noqa: E402
from simclr_lab.studies import sweep  # noqa: E402

PHASES = ("pretraining", "baseline", "finetuning")


def float32_frozen_scores(result, config, splits) -> dict:
    """kNN and linear probe of the encoder's weights computed in float32 (any machine)."""
    as_float32 = config.replace(**{"model.precision": "float32"})
    model = train.build_contrastive_model(as_float32, splits)
    model.set_weights(result.model.get_weights())
    return evaluate.frozen_scores(model.encoder, splits)


def seconds_from(metrics_file, phase: str, history: dict) -> float | None:
    """The seconds a `compare` run's metrics.json records for `phase`, when that run trained
    it (not loaded) and its history is this run's; else None."""
    if not metrics_file:
        return None
    entry = json.loads(Path(metrics_file).read_text())["phases"].get(phase, {})
    if entry.get("from_cache") or entry.get("history") != history:
        return None
    return entry["seconds"]


def refuse_unless(finished: bool, what: str, allowed: bool) -> None:
    """Stop unless the run is finished in the local cache or `--train` allows training it."""
    if not finished and not allowed:
        raise SystemExit(f"{what} is not finished in the local cache; --train trains it now.")


class Shipper:
    """Loads (or, with --train, trains) a preset's phases and ships them."""

    def __init__(self, config, changes: dict, args):
        self.config, self.changes, self.args = config, changes, args
        self.splits = load_splits(config.data)
        self._pretrained = None

    def pretrained(self):
        """The pretraining, loaded from the local cache once (trained only with --train)."""
        if self._pretrained is None:
            run = train.pretraining_run(self.config, self.splits)
            refuse_unless(run.finished, run.path.name, self.args.train)
            self._pretrained = self.timed(lambda: train.pretrain(self.config, self.splits))
        return self._pretrained

    def timed(self, run):
        """run() as a PhaseResult whose `seconds` is the training time (None when loaded)."""
        start = time.perf_counter()
        result = run()
        refuse_unless(result.from_cache, result.run_dir.name, self.args.train)
        result.seconds = None if result.from_cache else time.perf_counter() - start
        return result

    def phase(self, name: str):
        """The finished run of one phase."""
        if name == "pretraining":
            return self.pretrained()
        extra = None
        if name == "finetuning":
            extra = train.encoder_key(self.pretrained().model.encoder.get_weights())
        run, _ = train.supervised_run(name, self.config, self.splits, extra)
        refuse_unless(run.finished, run.path.name, self.args.train)
        if name == "baseline":
            return self.timed(lambda: train.train_baseline(self.config, self.splits))
        return self.timed(lambda: train.finetune(self.config, self.splits, self.pretrained()))

    def ship(self, name: str) -> Path:
        """Ship one phase; returns its folder."""
        config, result = self.config, self.phase(name)
        seconds = result.seconds or seconds_from(self.args.seconds_from, name, result.history)
        about = {
            "preset": config.name,
            "changes": self.changes,
            "phase": name,
            "epochs": config.pretrain.epochs
            if name == "pretraining"
            else config.supervised.epochs,
            "precision": config.model.precision,
            "machine": devices.machine_name(),
            "software": devices.describe(),
            "seconds": seconds or self.args.seconds,
            "data": self.splits.summary(),
            "final_val_accuracy": result.final_val_accuracy,
            "max_val_accuracy": result.max_val_accuracy,
            "shipped_on": time.strftime("%Y-%m-%d"),
        }
        if name == "pretraining":
            about["frozen_float32"] = float32_frozen_scores(result, config, self.splits)
        settings = json.loads((result.run_dir / "settings.json").read_text())
        folder = shipped.ship(result.model, settings, result.history, about)
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(json.dumps(about, indent=2))
        print(f"Shipped {folder} ({size / 1e6:.2f} MB)")
        return folder

    def ship_sweep(self, budgets) -> Path:
        """Ship `sweep.run_sweep`'s record for lesson 6's call (3 draws, `budgets`)."""
        draws = sweep.label_draws(self.config, 3)
        cached = sweep.supervised_runs_cached(
            self.config, self.splits, self.pretrained(), budgets, draws
        )
        refuse_unless(cached, "a supervised run of the sweep", self.args.train)
        with tempfile.TemporaryDirectory() as out:
            record = sweep.run_sweep(self.config, out, supervised_per_class=budgets)
        shipped_record = {k: v for k, v in record.items() if k not in ("source", "wall_seconds")}
        atomic_write_text(sweep.SHIPPED_RESULTS, json.dumps(shipped_record, indent=2) + "\n")
        shipped.seal_results()  # its checksum, checked when it is read
        size = sweep.SHIPPED_RESULTS.stat().st_size
        print(f"Shipped {sweep.SHIPPED_RESULTS} ({size / 1e3:.1f} kB, key {record['key']})")
        return sweep.SHIPPED_RESULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--phase", nargs="+", choices=PHASES, default=PHASES)
    parser.add_argument("--sweep", action="store_true", help="ship the label sweep's results")
    parser.add_argument("--train", action="store_true", help="train what is not cached")
    parser.add_argument("--seconds", type=float, default=None, help="one phase's training time")
    parser.add_argument(
        "--seconds-from", default=None, metavar="METRICS.JSON", help="compare's metrics.json"
    )
    args = parser.parse_args()
    if args.seconds is not None and len(args.phase) != 1:
        parser.error("--seconds is the training time of one phase: name it with --phase")
    changes = dict(parse_setting(text) for text in args.set)
    config = simclr_lab.get_preset(args.preset, **changes).replace(use_shipped=False)
    shipper = Shipper(config, changes, args)
    if args.sweep:
        shipper.ship_sweep((1, 10, config.data.labels_per_class))
        return
    for name in args.phase:
        shipper.ship(name)


if __name__ == "__main__":
    main()
