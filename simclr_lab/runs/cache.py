"""A folder of finished runs, keyed by every setting and the data that change their result.

A run's folder holds `weights.weights.h5`, `settings.json`, `checksums.json` (SHA-256 of the
weights and the history) and `history.json`, written in that order: the history's presence
means the run finished. Every write goes to a temporary file first and is then renamed, so a
run killed while saving leaves the previous good file. An unfinished run keeps its resume
state in `backup/` (the last whole epoch's weights, and `state.json`: that epoch, the history
so far and the weights' checksum), from which the next start resumes. A finished run and a
resume state are both checked before they are used (checksums, the settings stored against
the key, a history of finite numbers); one that fails is set aside (renamed, never deleted)
and trained again. A run being trained holds a lock beside its folder, so a second process
of the same run waits for it instead of writing the same files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: runs are not locked there
    fcntl = None

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


class NoRoom(OSError):
    """The disk lacks room for a run's files; the message says how much and where."""


def weights_bytes(model) -> int:
    """About what `model.save_weights` writes, at most: the model's variables three times
    (the weights and Adam's two moments), plus room for the file's own structure."""
    return 3 * sum(math.prod(v.shape) * 4 for v in model.variables) + (1 << 20)


def check_room(folder: Path, needed: int) -> None:
    """NoRoom, naming the folder, unless its disk has `needed` bytes free (h5py crashes the
    process when a write fails, so this is checked before writing, not after)."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise NoRoom(
            f"no room in {folder}: about {needed / 1e6:,.1f} MB needed, {free / 1e6:,.1f} MB "
            "free; free some space or choose another cache folder (--cache-dir or "
            "$SIMCLR_LAB_CACHE)."
        )


def atomic_save_weights(model, path: Path) -> None:
    """`model.save_weights` through a temporary file (its name must end in .weights.h5),
    after checking the disk has room for it (`NoRoom`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_room(path.parent, weights_bytes(model))
    temp = path.with_name(f".{os.getpid()}.tmp.weights.h5")
    try:
        model.save_weights(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _same_file(handle, path: Path) -> bool:
    """Whether the open file is still the one at `path` (not removed or replaced)."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class RunDir:
    """The folder of one phase's run: `<cache>/<phase>-<key>/`."""

    def __init__(self, root: Path, phase: str, settings: dict):
        self.settings = {"phase": phase, **settings}
        self.path = Path(root) / f"{phase}-{settings_key(self.settings)}"
        self.weights = self.path / "weights.weights.h5"
        self.history_file = self.path / "history.json"
        self.checksums_file = self.path / "checksums.json"
        self.backup = self.path / "backup"
        self.checkpoint_weights = self.backup / "latest.weights.h5"
        self.checkpoint_state = self.backup / "state.json"
        self.lock_file = self.path.with_name(f".{self.path.name}.lock")

    @property
    def finished(self) -> bool:
        """Whether the run was stored as finished (its files are checked by `verified`)."""
        return self.history_file.is_file()

    def verified_history(self, epochs: int) -> dict:
        """The finished run's history, after checking every file against its checksum, the
        stored settings against the key's, and the history's shape ({metric: `epochs` finite
        numbers}). Raises DamagedRun naming the folder.
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
            stored = json.loads((self.path / "settings.json").read_text())
        except (OSError, ValueError, AttributeError) as error:
            raise DamagedRun(f"run folder {self.path} is unreadable ({error})") from error
        if wrong:
            raise DamagedRun(f"run folder {self.path}: {' and '.join(wrong)} fail their checksum")
        self._check_settings(stored)
        self._check_history(history, epochs, "history.json")
        return history

    def _check_settings(self, stored) -> None:
        """Refuse a folder whose settings.json is not the settings of its key (a run copied
        or renamed under another key)."""
        expected = json.loads(json.dumps(self.settings, default=str))
        if stored != expected:
            differ = sorted(
                k
                for k in set(expected) | set(stored or {})
                if (stored or {}).get(k) != expected.get(k)
            )
            raise DamagedRun(
                f"run folder {self.path}: settings.json is not the settings of its key "
                f"(differs in {', '.join(differ[:5])})"
            )

    def _check_history(self, history, epochs: int, name: str) -> None:
        lengths = {len(v) for v in history.values()} if isinstance(history, dict) else set()
        if not history or lengths != {epochs}:
            raise DamagedRun(f"run folder {self.path}: {name} does not hold {epochs} epochs")
        numbers = [x for values in history.values() for x in values]
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers):
            raise DamagedRun(f"run folder {self.path}: {name} holds a value that is not finite")

    def save_checkpoint(self, model, history: dict, epoch: int) -> None:
        """The resume state after `epoch` whole epochs: weights first, then state.json (the
        epoch, the history so far and the weights' checksum), each through a rename."""
        atomic_save_weights(model, self.checkpoint_weights)
        state = {
            "epoch": epoch,
            "history": history,
            "weights_sha256": file_sha256(self.checkpoint_weights),
        }
        atomic_write_text(self.checkpoint_state, json.dumps(state))

    def verified_checkpoint(self, epochs: int) -> tuple[int, dict]:
        """(epochs done, history so far) of an interrupted run's resume state, (0, {}) when
        it has none. Raises DamagedRun when the state is unreadable, does not match its
        weights, or says more epochs than the run has."""
        if not self.backup.exists():
            return 0, {}
        where = f"run folder {self.path} has unusable resume state"
        try:
            state = json.loads(self.checkpoint_state.read_text())
            weights_sum = file_sha256(self.checkpoint_weights)
            stored = json.loads((self.path / "settings.json").read_text())
            epoch, history = state["epoch"], state["history"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DamagedRun(f"{where} ({error})") from error
        self._check_settings(stored)
        if not isinstance(epoch, int) or not 1 <= epoch <= epochs:
            raise DamagedRun(f"{where}: epoch {epoch!r} of a {epochs}-epoch run")
        if state.get("weights_sha256") != weights_sum:
            raise DamagedRun(f"{where}: latest.weights.h5 fails its checksum")
        self._check_history(history, epoch, "the resume state's history")
        return epoch, history

    @contextlib.contextmanager
    def training_lock(self, log=print):
        """Held while this run trains: a second process of the same run says so in one line
        and waits for the first to finish (then loads what it stored). The lock file is
        removed when the lock is let go."""
        if fcntl is None:
            yield
            return
        said = False
        while True:
            handle = open(self.lock_file, "a")  # held across the yield
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not said:
                    log(
                        f"{self.path.name}: another process is training this run in "
                        f"{self.path.parent}; waiting for it to finish."
                    )
                    said = True
                fcntl.flock(handle, fcntl.LOCK_EX)
            if _same_file(handle, self.lock_file):
                break
            handle.close()  # the holder removed it meanwhile: lock the new one
        try:
            yield
        finally:
            self.lock_file.unlink(missing_ok=True)
            handle.close()  # lets the lock go

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

    def write_settings(self) -> None:
        atomic_write_text(self.path / "settings.json", json.dumps(self.settings, indent=2))

    def save(self, model, history: dict) -> None:
        """Store the finished run: weights, settings, checksums, then history (the mark)."""
        atomic_save_weights(model, self.weights)
        self.write_settings()
        text = json.dumps(history)
        sums = {
            "weights.weights.h5": file_sha256(self.weights),
            "history.json": hashlib.sha256(text.encode()).hexdigest(),
        }
        atomic_write_text(self.checksums_file, json.dumps(sums, indent=2))
        atomic_write_text(self.history_file, text)
