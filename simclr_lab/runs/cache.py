"""A folder of finished runs, keyed by every setting and the data that change their result.

A run's folder holds `weights.weights.h5`, `settings.json`, `checksums.json` (SHA-256 of the
weights and the history) and `history.json`, written in that order: the history's presence
means the run finished. Every write goes to a temporary file first and is then renamed, so a
run killed while saving leaves the previous good file. An unfinished run keeps its Keras
BackupAndRestore state in `backup/`, from which the next start resumes. A finished run is
checked against its checksums before it is used; one that fails is set aside (renamed, never
deleted) and trained again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

CACHE_ENV_VAR = "SIMCLR_LAB_CACHE"


class DamagedRun(RuntimeError):
    """A cached run's files are unreadable or do not match their checksums."""


def default_cache_dir() -> Path:
    """`$SIMCLR_LAB_CACHE`, else ~/.cache/simclr_lab."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "simclr_lab")


def settings_key(settings: dict) -> str:
    """A short stable hash of a JSON-able dict of settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def arrays_digest(arrays) -> str:
    """A hash of a sequence of numpy arrays (dtype, shape and bytes): e.g. a model's weights."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable_dir(path, name: str = "cache_dir") -> Path:
    """`path` as a folder, created if needed; one clear error naming `name` if it cannot be
    written (cache_dir also points to $SIMCLR_LAB_CACHE)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{name}={str(path)!r} exists and is not a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        hint = " (or set $SIMCLR_LAB_CACHE)" if name == "cache_dir" else ""
        raise PermissionError(
            f"{name}={str(path)!r} cannot be written ({error.strerror or error}); "
            f"choose a writable folder{hint}."
        ) from error
    return path


def is_writable_dir(path) -> bool:
    """Whether `path` is (or can be made) a writable folder."""
    try:
        check_writable_dir(path)
    except OSError:
        return False
    return True


def _user_file_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename (usual file mode)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, _user_file_mode())  # mkstemp makes it private (0600)
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
        self.checksums_file = self.path / "checksums.json"
        self.backup = self.path / "backup"

    @property
    def finished(self) -> bool:
        """Whether the run was stored as finished (its files are checked by `verified`)."""
        return self.history_file.is_file()

    def verified_history(self, epochs: int) -> dict:
        """The finished run's history, after checking every file against its checksum and
        the history's shape ({metric: `epochs` numbers}). Raises DamagedRun naming the folder.
        """
        try:
            sums = json.loads(self.checksums_file.read_text())
            text = self.history_file.read_text()
            actual = {
                "weights.weights.h5": file_sha256(self.weights),
                "history.json": hashlib.sha256(text.encode()).hexdigest(),
            }
            wrong = [name for name, digest in actual.items() if sums.get(name) != digest]
            history = json.loads(text)
        except (OSError, ValueError, AttributeError) as error:
            raise DamagedRun(f"run folder {self.path} is unreadable ({error})") from error
        if wrong:
            raise DamagedRun(f"run folder {self.path}: {' and '.join(wrong)} fail their checksum")
        lengths = {len(v) for v in history.values()} if isinstance(history, dict) else set()
        if not history or lengths != {epochs}:
            raise DamagedRun(f"run folder {self.path}: history.json does not hold {epochs} epochs")
        return history

    def set_aside(self, reason: str, log=print) -> Path:
        """Rename the damaged folder to `<name>.damaged-<time>` (nothing is deleted)."""
        target = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, target)
        except OSError as error:
            raise DamagedRun(
                f"{reason}, and it cannot be set aside ({error.strerror or error}); move or "
                f"delete it by hand, or use another cache folder."
            ) from error
        log(f"{reason}: set aside as {target.name}; training it again.")
        return target

    def save(self, model, history: dict) -> None:
        """Store the finished run: weights, settings, checksums, then history (the mark)."""
        atomic_save_weights(model, self.weights)
        atomic_write_text(self.path / "settings.json", json.dumps(self.settings, indent=2))
        text = json.dumps(history)
        sums = {
            "weights.weights.h5": file_sha256(self.weights),
            "history.json": hashlib.sha256(text.encode()).hexdigest(),
        }
        atomic_write_text(self.checksums_file, json.dumps(sums, indent=2))
        atomic_write_text(self.history_file, text)
