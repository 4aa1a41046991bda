"""A training phase run to the end once: loaded when a finished run of its settings is
cached or shipped, resumed when one was interrupted, trained and stored otherwise."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras

from simclr_lab.evaluate import accuracy_key
from simclr_lab.runs import shipped
from simclr_lab.runs.cache import (
    DamagedRun,
    RunDir,
    check_room,
    check_writable_dir,
    weights_bytes,
)
from simclr_lab.runs.callbacks import (
    EpochCheckpoint,
    HistoryLog,
    ReseedAugmentation,
    StopOnNaN,
    TrainingDiverged,
)
from simclr_lab.runs.distribute import active
from simclr_lab.sources.batching import EvalStream


@dataclass
class PhaseResult:
    """A finished phase: its model, its per-epoch history and where it came from."""

    phase: str
    model: keras.Model
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    from_cache: bool = False
    run_dir: Path | None = None
    finished: bool = True  # False when stopped early: not cached, resumes next time
    shipped: str | None = None  # where a shipped run came from (`shipped.ShippedRun.describe`)

    @property
    def accuracy_key(self) -> str:
        return accuracy_key(self.history)

    @property
    def max_val_accuracy(self) -> float:
        """The best epoch's test accuracy: the figure the reference prints."""
        return float(max(self.history[self.accuracy_key]))

    @property
    def final_val_accuracy(self) -> float:
        """The last epoch's test accuracy: no epoch picked by looking at the test split."""
        return float(self.history[self.accuracy_key][-1])


def _load_finished(phase: str, model: keras.Model, run: RunDir, epochs: int) -> PhaseResult:
    """The stored run, checked against its checksums; raises DamagedRun."""
    history = run.verified_history(epochs)
    model.optimizer.build(model.trainable_variables)  # the file holds its state too
    try:
        model.load_weights(run.weights)
    except Exception as error:  # h5py and Keras raise many kinds for a damaged file
        raise DamagedRun(f"run folder {run.path} has unloadable weights ({error})") from error
    return PhaseResult(phase, model, history, 0.0, from_cache=True, run_dir=run.path)


def _resume_state(model: keras.Model, run: RunDir, epochs: int) -> dict:
    """The history of an interrupted run's whole epochs ({} for a new run), its weights and
    optimizer state loaded into `model`; raises DamagedRun when the state fails its checks."""
    done, history = run.verified_checkpoint(epochs)
    if done:
        model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(run.checkpoint_weights)
        except Exception as error:  # h5py and Keras raise many kinds for a damaged file
            raise DamagedRun(
                f"run folder {run.path} has unusable resume state ({error})"
            ) from error
    return history


@dataclass
class Phase:
    """What one phase trains: a compiled model, its cache folder, its streams."""

    name: str
    model: keras.Model
    run: RunDir
    train_stream: object  # PairedStream or LabelledStream
    test_stream: EvalStream | None  # None: no labels, no validation
    epochs: int
    seed: int
    use_shipped: bool = False  # load a matching shipped run when no local one is finished


def run_phase(phase: Phase, callbacks=(), verbose=2, log=print) -> PhaseResult:
    """Load the finished run, or resume or start training it and store it when done.

    A damaged run or resume state is named and set aside (never deleted), and the phase
    trains from the start. While it trains, the run is locked: the same run started in
    another process waits for this one, then loads it."""
    run = phase.run
    if phase.use_shipped and not run.finished:  # a local run of the same key comes first
        result = _load_shipped(phase, log)
        if result is not None:
            return result
    result = _load_if_finished(phase, log)
    if result is not None:
        return result
    check_writable_dir(run.path.parent)  # only training needs to write
    check_room(run.path.parent, 2 * weights_bytes(phase.model))  # resume state, then the run
    with run.training_lock(log):
        result = _load_if_finished(phase, log)  # another process may have finished it
        if result is not None:
            return result
        history = {}
        if run.path.is_dir():
            try:
                history = _resume_state(phase.model, run, phase.epochs)
            except DamagedRun as error:
                run.set_aside(str(error), log)
        return _train(phase, history, callbacks, verbose, log)


def _load_if_finished(phase: Phase, log) -> PhaseResult | None:
    """The finished run of `phase` loaded, or None; a damaged one is set aside."""
    if not phase.run.finished:
        return None
    try:
        return _load_finished(phase.name, phase.model, phase.run, phase.epochs)
    except DamagedRun as error:  # renamed aside (an error of its own if it cannot be)
        phase.run.set_aside(str(error), log)
        return None


def _train(phase: Phase, history: dict, callbacks, verbose, log) -> PhaseResult:
    """Train `phase` from the epochs `history` holds (resumed) to the end, and store it."""
    model, run, train_stream, epochs = phase.model, phase.run, phase.train_stream, phase.epochs
    devices = active()  # those the model was built on: each process reads its own rows
    finished = len(next(iter(history.values()), []))  # > 0 when resuming
    created = not run.path.is_dir()
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_settings()  # so the resume state can be checked against the key
    train_stream.set_start_epoch(finished)  # so it sees the same data order
    history_log = HistoryLog(history)
    _release_compiled_steps()  # eager operations before the fit (checks, diagnostics) compiled
    start = time.perf_counter()
    try:
        model.fit(
            devices.local(train_stream),
            validation_data=phase.test_stream,
            epochs=epochs,
            initial_epoch=finished,
            steps_per_epoch=train_stream.steps_per_epoch,
            shuffle=False,  # the streams shuffle themselves, reproducibly
            verbose=verbose,
            callbacks=[
                *devices.callbacks,
                StopOnNaN(phase.name),
                ReseedAugmentation(phase.seed),
                *callbacks,  # before the log, so metrics they add (val_knn_acc) are kept
                history_log,
                # kept after a stop, so that the next start resumes; removed once finished
                EpochCheckpoint(run, history_log),
            ],
        )
    except TrainingDiverged:
        if created:  # nothing worth keeping: the settings diverge again from the start
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    _release_compiled_steps()
    done = len(next(iter(history_log.history.values()), []))
    if done < epochs:  # stopped early (the Stop button): a partial run is never cached
        log(
            f"{phase.name}: stopped after {done} of {epochs} epochs; not cached. Run it again "
            f"with the same settings to resume from epoch {done + 1}."
        )
        return PhaseResult(
            phase.name, model, history_log.history, seconds, run_dir=run.path, finished=False
        )
    run.save(model, history_log.history)
    shutil.rmtree(run.backup, ignore_errors=True)
    return PhaseResult(phase.name, model, history_log.history, seconds, run_dir=run.path)


def _release_compiled_steps() -> None:
    """On JAX, drop what XLA compiled so far and give the freed memory back: before a fit,
    the small programs of the eager operations run so far (models build without any since
    they are traced on symbolic inputs); after it, the phase's own steps (the next phase
    compiles its own). The smoke comparison peaked at 1.49 GiB with neither, 1.10 GiB with
    the second alone (TensorFlow: 1.05) and 0.98-1.00 GiB with both (2-core Intel Xeon, when
    models still built eagerly)."""
    if keras.backend.backend() != "jax":
        return
    import gc

    import jax

    from simclr_lab import _glibc

    jax.clear_caches()
    gc.collect()
    libc = _glibc()
    if libc is not None:  # glibc keeps freed pages for reuse: hand them back
        libc.malloc_trim(0)


def _load_shipped(phase: Phase, log) -> PhaseResult | None:
    """The shipped run matching the phase's settings, loaded into its model; None if there
    is none or it is damaged (said in one line: training takes over, nothing else changes)."""
    found = shipped.find(phase.run.settings, log=log)
    if found is None:
        return None
    try:
        history = found.load(phase.model, phase.epochs)
    except shipped.DamagedShippedRun as error:
        log(f"{error}; training instead.")
        return None
    return PhaseResult(
        phase.name,
        phase.model,
        history,
        0.0,
        from_cache=True,
        run_dir=found.path,
        shipped=found.describe(),
    )
