"""A folder of finished runs, keyed by every setting that changes their result.

A run's folder holds `weights.weights.h5`, `history.json` (written last: its presence means
the run finished) and `settings.json`. Every write goes to a temporary file first and is then
renamed, so a run killed while saving leaves the previous good file. An unfinished run keeps
its Keras BackupAndRestore state in `backup/`, from which the next start resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

CACHE_ENV_VAR = "SIMCLR_LAB_CACHE"


def default_cache_dir() -> Path:
    """`$SIMCLR_LAB_CACHE`, else ~/.cache/simclr_lab."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "simclr_lab")


def settings_key(settings: dict) -> str:
    """A short stable hash of a JSON-able dict of settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_save_weights(model, path: Path) -> None:
    """`model.save_weights` through a temporary file (its name must end in .weights.h5)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{os.getpid()}.tmp.weights.h5")
    try:
        model.save_weights(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class RunDir:
    """The folder of one phase's run: `<cache>/<phase>-<key>/`."""

    def __init__(self, root: Path, phase: str, settings: dict):
        self.settings = {"phase": phase, **settings}
        self.path = Path(root) / f"{phase}-{settings_key(self.settings)}"
        self.weights = self.path / "weights.weights.h5"
        self.history_file = self.path / "history.json"
        self.backup = self.path / "backup"

    @property
    def finished(self) -> bool:
        return self.history_file.is_file() and self.weights.is_file()

    def history(self) -> dict:
        return json.loads(self.history_file.read_text())

    def save(self, model, history: dict) -> None:
        """Store the finished run: weights, settings, then history (the completion mark)."""
        atomic_save_weights(model, self.weights)
        atomic_write_text(self.path / "settings.json", json.dumps(self.settings, indent=2))
        atomic_write_text(self.history_file, json.dumps(history))
