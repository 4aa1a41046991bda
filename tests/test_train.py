import keras
import numpy as np
import pytest

from simclr_lab.runs import callbacks, train


def _at_epoch(at, action):
    """A callback that runs `action(model)` when epoch `at` (0-based) begins."""
    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: action(callback.model) if epoch == at else None
    )
    return callback


def _interrupt(at):
    """Stands in for a kill at the start of epoch `at`."""

    def kill(model):
        raise KeyboardInterrupt

    return _at_epoch(at, kill)


def _stop_at(at):
    """What the dashboard's Stop button does: ask Keras to stop, here as epoch `at` begins."""
    return _at_epoch(at, lambda model: setattr(model, "stop_training", True))


@pytest.fixture(scope="module")
def config(smoke_config):
    return smoke_config.replace(**{"pretrain.epochs": 3, "supervised.epochs": 3})


def test_second_call_loads_the_cached_run(config, smoke_splits, tmp_path):
    first = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    assert not first.from_cache and len(first.history["val_acc"]) == 3
    again = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    assert again.from_cache and again.history == first.history
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    print(train.report(again))


def test_fixed_steps_an_epoch_train_apart_unless_they_are_one_pass(config, smoke_splits, tmp_path):
    first = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    one_pass = len(smoke_splits.labelled_labels) // train.supervised_batch_size(
        config, smoke_splits
    )
    same = config.replace(**{"supervised.steps_per_epoch": one_pass})
    assert train.train_baseline(same, smoke_splits, tmp_path, verbose=0).run_dir == first.run_dir
    more = config.replace(**{"supervised.steps_per_epoch": one_pass + 1})
    other = train.train_baseline(more, smoke_splits, tmp_path, verbose=0)
    assert other.run_dir != first.run_dir and not other.from_cache


def test_other_settings_never_overwrite_a_finished_run(config, smoke_splits, tmp_path):
    first = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    other = train.train_baseline(
        config.replace(**{"supervised.learning_rate": 3e-3}), smoke_splits, tmp_path, verbose=0
    )
    assert other.run_dir != first.run_dir and not other.from_cache
    assert train.train_baseline(config, smoke_splits, tmp_path, verbose=0).from_cache


def test_pretraining_key_holds_what_the_encoder_depends_on(config):
    key = train.pretraining_key(config)
    longer_supervised = config.replace(**{"supervised.epochs": 60, "supervised.batch_size": 8})
    assert train.pretraining_key(longer_supervised) == key  # the encoder does not change
    for change in ({"pretrain.epochs": 4}, {"supervised.augment.min_area": 0.5}, {"seed": 1}):
        assert train.pretraining_key(config.replace(**change)) != key, change


def test_report_prints_like_the_reference(config, smoke_splits, tmp_path):
    result = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    best = f"{max(result.history['val_acc']) * 100:.2f}%"
    assert train.report(result) == f"Maximal test accuracy: {best}"
    assert train.report(result, "validation") == f"Maximal validation accuracy: {best}"


def test_nan_loss_stops_with_advice_and_caches_nothing(config, smoke_splits, tmp_path):
    broken = config.replace(**{"pretrain.learning_rate": 1e30})
    with pytest.raises(callbacks.TrainingDiverged, match="pretraining.*epoch 1.*learning rate"):
        train.pretrain(broken, smoke_splits, tmp_path, verbose=0)
    assert not list(tmp_path.glob("pretraining-*/weights.weights.h5"))


@pytest.fixture(scope="module")
def whole_pretraining(config, smoke_splits, tmp_path_factory):
    """The 3-epoch smoke pretraining, trained once without a break: what the interrupted and
    killed runs below must resume to."""
    return train.pretrain(config, smoke_splits, tmp_path_factory.mktemp("whole"), verbose=0)


@pytest.mark.slow
def test_interrupted_pretraining_resumes_to_the_same_result(
    config, smoke_splits, whole_pretraining, tmp_path
):
    whole = whole_pretraining
    with pytest.raises(KeyboardInterrupt):
        train.pretrain(
            config, smoke_splits, tmp_path / "cut", callbacks=[_interrupt(2)], verbose=0
        )
    resumed = train.pretrain(config, smoke_splits, tmp_path / "cut", verbose=0)
    assert not resumed.from_cache
    assert {k: len(v) for k, v in resumed.history.items()} == {
        k: len(v) for k, v in whole.history.items()
    }
    for key in whole.history:
        np.testing.assert_allclose(resumed.history[key], whole.history[key], rtol=1e-4, atol=1e-5)
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_unwritable_cache_dir_is_refused_before_training(config, smoke_splits, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="cannot be written"):
        train.train_baseline(config, smoke_splits, blocker / "cache", verbose=0)


def test_stopped_run_is_not_cached_and_resumes(config, smoke_splits, tmp_path):
    stopped = train.train_baseline(
        config, smoke_splits, tmp_path, callbacks=[_stop_at(1)], verbose=0
    )
    assert not stopped.finished and len(stopped.history["val_acc"]) == 1
    assert not (stopped.run_dir / "history.json").exists()
    resumed = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    assert resumed.finished and not resumed.from_cache
    assert len(resumed.history["val_acc"]) == 3
    assert resumed.history["val_acc"][0] == stopped.history["val_acc"][0]
    assert not (resumed.run_dir / "backup").exists()


KILL_SCRIPT = """
import os, signal, sys
import keras
from simclr_lab import get_preset
from simclr_lab.runs import train
from simclr_lab.sources import data

class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, as when a kernel dies

config = get_preset("smoke", **{"pretrain.epochs": 3, "supervised.epochs": 3})  # as `config`
train.pretrain(config, data.load_splits(config.data), sys.argv[1], callbacks=[Kill()],
               verbose=0)
"""


@pytest.mark.slow
def test_pretraining_killed_with_sigkill_resumes_to_the_same_result(
    config, smoke_splits, whole_pretraining, tmp_path
):
    import subprocess
    import sys

    killed = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "cut")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = train.pretrain(config, smoke_splits, tmp_path / "cut", verbose=0)
    whole = whole_pretraining
    assert not resumed.from_cache and len(resumed.history["c_loss"]) == 3
    for key in whole.history:
        np.testing.assert_allclose(resumed.history[key], whole.history[key], rtol=1e-4, atol=1e-5)
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class _KillAfterLastBackup(keras.callbacks.Callback):
    """Dies after the last epoch was backed up, before the run is stored in the cache."""

    def on_train_end(self, logs=None):
        raise KeyboardInterrupt


def test_run_killed_after_its_last_epoch_finishes_on_restart(config, smoke_splits, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train.train_baseline(
            config, smoke_splits, tmp_path, callbacks=[_KillAfterLastBackup()], verbose=0
        )
    restarted = train.train_baseline(config, smoke_splits, tmp_path, verbose=0)
    assert restarted.finished and not restarted.from_cache
    assert len(restarted.history["val_acc"]) == 3
    assert train.train_baseline(config, smoke_splits, tmp_path, verbose=0).from_cache
