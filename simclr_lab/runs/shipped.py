"""Finished runs shipped inside the package, found the way a local cache entry is.

`simclr_lab/shipped/<phase>-<key>/` holds one finished pretraining, supervised baseline or
finetuning: `model.weights.h5` (Keras' own weights file, without optimizer state),
`settings.json` (its cache key), `history.json`, `about.json` (where it ran, how long; a
pretraining also what its frozen features scored) and `checksums.json`. `train.pretrain`,
`train.train_baseline` and `train.finetune` load one when no local run of the same settings
is finished; a local run always comes first, and `Config.use_shipped=False`
(`--set use_shipped=false`) trains instead.
A finetuning's key holds a digest of its starting encoder's weights, so a shipped one matches
only after the same (shipped or cached) encoder.

A shipped run matches on every setting and on the data's fingerprint; the arithmetic
(`model.precision`) is left out of the match, because the stored weights are float32 either
way: `about.json` says which precision trained them, and the lessons print it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from simclr_lab.runs.cache import atomic_write_text, file_sha256

SHIPPED_DIR = Path(__file__).parents[1] / "shipped"  # simclr_lab/shipped: data, no code
WEIGHTS = "model.weights.h5"
FILES = (WEIGHTS, "settings.json", "history.json", "about.json")
# The shipped results (not runs), checked against `shipped/checksums.json` when read.
RESULTS = (
    "study_results.jsonl",
    "pretraining_curve.jsonl",
    "sweep_results.json",
    "failure_runs.json",
)
RESULT_SUMS = "checksums.json"


@contextlib.contextmanager
def _weights_only(model):
    """Within: `model` has no optimizer, so Keras saves, and loads, its weights alone (a
    shipped run starts no training: its optimizer state would only triple the file)."""
    optimizer = getattr(model, "optimizer", None)  # none before compile
    if optimizer is None:
        yield
        return
    model.optimizer = None
    try:
        yield
    finally:
        model.optimizer = optimizer


def noun(phase: str) -> str:
    """What a phase's run gives a learner: 'encoder' for a pretraining, else the phase."""
    return "encoder" if phase == "pretraining" else phase


class DamagedShippedRun(RuntimeError):
    """A shipped run's files are missing or do not match their checksums."""


def match_key(settings: dict) -> dict:
    """The settings a shipped run must share: all but the arithmetic (`model.precision`)."""
    model = {k: v for k, v in settings.get("model", {}).items() if k != "precision"}
    return {**settings, "model": model}


@dataclass(frozen=True)
class ShippedRun:
    """One shipped run's folder."""

    path: Path

    @property
    def settings(self) -> dict:
        return json.loads((self.path / "settings.json").read_text())

    @property
    def about(self) -> dict:
        return json.loads((self.path / "about.json").read_text())

    def verify(self) -> None:
        """Check every file against checksums.json; raises DamagedShippedRun naming it."""
        try:
            sums = json.loads((self.path / "checksums.json").read_text())
            wrong = [name for name in FILES if sums.get(name) != file_sha256(self.path / name)]
        except (OSError, ValueError, AttributeError) as error:
            raise DamagedShippedRun(f"shipped run {self.path} is unreadable ({error})") from error
        if wrong:
            raise DamagedShippedRun(
                f"shipped run {self.path}: {', '.join(wrong)} fail their checksum"
            )

    def load(self, model, epochs: int) -> dict:
        """Set `model`'s weights from the run (checked first); returns its history."""
        self.verify()
        history = json.loads((self.path / "history.json").read_text())
        if {len(v) for v in history.values()} != {epochs}:
            raise DamagedShippedRun(f"shipped run {self.path}: history is not {epochs} epochs")
        try:
            with _weights_only(model):
                model.load_weights(self.path / WEIGHTS)
        except (OSError, ValueError, KeyError) as error:
            raise DamagedShippedRun(
                f"shipped run {self.path}: {WEIGHTS} does not load into this model ({error})"
            ) from error
        return history

    @property
    def phase(self) -> str:
        """'pretraining', 'baseline' or 'finetuning', from the folder's name."""
        return self.path.name.rsplit("-", 1)[0]

    def describe(self) -> str:
        """'shipped encoder, 12 epochs, trained in mixed_bfloat16 on <machine> in 839 s'
        ('shipped baseline, 60 epochs, ...' for a supervised run)."""
        about = self.about
        took = f" in {about['seconds']:.0f} s" if about.get("seconds") else ""
        return (
            f"shipped {noun(self.phase)}, {about['epochs']} epochs, trained in "
            f"{about['precision']} on {about['machine']}{took}"
        )


def shipped_runs(root: Path | None = None) -> list[ShippedRun]:
    """Every shipped run under `root` (default: the package's `shipped/` folder)."""
    root = Path(root or SHIPPED_DIR)
    if not root.is_dir():
        return []
    return [ShippedRun(p) for p in sorted(root.iterdir()) if (p / "settings.json").is_file()]


def find(settings: dict, root: Path | None = None, log=print) -> ShippedRun | None:
    """The shipped run whose settings match `settings` (a cache key, `match_key`), or None.

    Says so in one line when a shipped run has the same settings but other data (another
    rendering, another split), so a learner knows why it trains instead.
    """
    wanted = match_key(settings)
    other_data = []
    for run in shipped_runs(root):
        try:
            theirs = match_key(run.settings)  # settings.json read once a run
        except (OSError, ValueError) as error:
            log(f"shipped run {run.path} is unreadable ({error}); ignored.")
            continue
        if theirs == wanted:
            return run
        if {**theirs, "data_fingerprint": None} == {**wanted, "data_fingerprint": None}:
            other_data.append((run, theirs.get("data_fingerprint")))
    for run, fingerprint in other_data:
        log(
            f"The shipped {noun(run.phase)} {run.path.name} has these settings but was trained "
            f"on other data (fingerprint {fingerprint}, here {settings.get('data_fingerprint')}); "
            f"training instead."
        )
    return None


def ship(model, settings: dict, history: dict, about: dict, root: Path | None = None) -> Path:
    """Write a finished run (any phase) as a shipped run (weights without optimizer state);
    returns its folder. `about`: {epochs, precision, machine, seconds, ...}."""
    key = hashlib.sha256(json.dumps(match_key(settings), sort_keys=True).encode()).hexdigest()
    folder = Path(root or SHIPPED_DIR) / f"{settings['phase']}-{key[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    with _weights_only(model):
        model.save_weights(folder / WEIGHTS)
    atomic_write_text(folder / "settings.json", json.dumps(settings, indent=2))
    atomic_write_text(folder / "history.json", json.dumps(history))
    atomic_write_text(folder / "about.json", json.dumps(about, indent=2))
    sums = {name: file_sha256(folder / name) for name in FILES}
    atomic_write_text(folder / "checksums.json", json.dumps(sums, indent=2))
    return folder


def verified_result(name: str, root: Path | None = None) -> Path:
    """The path of a shipped result file (`RESULTS`), after checking it against the folder's
    checksums.json; raises DamagedShippedRun naming it when it is missing or altered."""
    root = Path(root or SHIPPED_DIR)
    path = root / name
    try:
        expected = json.loads((root / RESULT_SUMS).read_text()).get(name)
        actual = file_sha256(path)
    except (OSError, ValueError, AttributeError) as error:
        raise DamagedShippedRun(
            f"the shipped results {path} cannot be checked ({error}); reinstall simclr-lab"
        ) from error
    if actual != expected:
        raise DamagedShippedRun(
            f"the shipped results {path} fail their checksum (changed since they shipped); "
            "reinstall simclr-lab"
        )
    return path


def seal_results(root: Path | None = None) -> dict:
    """Write the checksums of the shipped results that exist (after making or updating one
    of them); returns them."""
    root = Path(root or SHIPPED_DIR)
    sums = {name: file_sha256(root / name) for name in RESULTS if (root / name).is_file()}
    atomic_write_text(root / RESULT_SUMS, json.dumps(sums, indent=2) + "\n")
    return sums
