"""Faults that must never give a silent wrong result: other data or another encoder under the
same settings, damaged cache entries, unusable data files, a read-only cache."""

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

from simclr_lab.config import DataConfig
from simclr_lab.runs import cache, callbacks, phases, shipped, train
from simclr_lab.sources import data
from simclr_lab.sources.splits import Splits
from simclr_lab.studies import compare, study, sweep


@pytest.fixture(scope="module")
def config(smoke_config):
    return smoke_config.replace(**{"pretrain.epochs": 1, "supervised.epochs": 1})


def _baseline(config, splits, folder, messages=None):
    log = messages.append if messages is not None else print
    return train.train_baseline(config, splits, folder, verbose=0, log=log)


# ------------------------------------------------------------------ the data's identity


def test_other_labels_under_the_same_settings_are_not_served_from_the_cache(
    config, smoke_splits, tmp_path
):
    shuffled = dataclasses.replace(
        smoke_splits,
        labelled_labels=np.random.default_rng(0).permutation(smoke_splits.labelled_labels),
    )
    first = _baseline(config, shuffled, tmp_path)
    real = _baseline(config, smoke_splits, tmp_path)
    assert not real.from_cache and real.run_dir != first.run_dir
    assert _baseline(config, smoke_splits, tmp_path).from_cache


def test_fingerprint_follows_the_files_read(fake_fashion_mnist, write_idx, tmp_path):
    folder, arrays = fake_fashion_mnist
    settings = DataConfig(source="fashion_mnist", image_size=32, labels_per_class=3)
    first = data.load_splits(settings).fingerprint
    assert data.load_splits(settings).fingerprint == first  # stable for the same files
    shuffled = np.random.default_rng(1).permutation(arrays["train_labels"])
    write_idx(folder / data.FASHION_MNIST_FILES["train_labels"], shuffled)
    assert data.load_splits(settings).fingerprint != first


def test_finetuning_is_keyed_on_the_encoder_it_is_given(config, smoke_splits, tmp_path):
    pretrained = train.pretrain(config, smoke_splits, tmp_path, verbose=0)
    first = train.finetune(config, smoke_splits, pretrained, tmp_path, verbose=0)
    assert train.finetune(config, smoke_splits, pretrained, tmp_path, verbose=0).from_cache
    other = train.pretrain(config.replace(**{"pretrain.temperature": 0.5}), smoke_splits, tmp_path)
    # Same finetuning settings, another encoder: trained, not the first one's result.
    again = train.finetune(config, smoke_splits, other, tmp_path, verbose=0)
    assert not again.from_cache and again.run_dir != first.run_dir


def test_an_unfinished_pretraining_is_finetuned_apart(config, smoke_splits, tmp_path):
    pretrained = train.pretrain(config, smoke_splits, tmp_path, verbose=0)
    finetuned = train.finetune(config, smoke_splits, pretrained, tmp_path, verbose=0)
    stopped = dataclasses.replace(pretrained, finished=False)
    weights = stopped.model.encoder.get_weights()
    stopped.model.encoder.set_weights([w * 0.5 for w in weights])  # as after fewer epochs
    apart = train.finetune(config, smoke_splits, stopped, tmp_path, verbose=0)
    assert not apart.from_cache and apart.run_dir != finetuned.run_dir


# ------------------------------------------------------------------ damaged cache entries


def _zero_part_of_a_kernel(path):
    import h5py

    with h5py.File(path, "r+") as file:
        kernels = []
        file.visititems(lambda n, o: kernels.append(n) if isinstance(o, h5py.Dataset) else None)
        largest = max(kernels, key=lambda n: file[n].size)
        values = file[largest][...]
        values.flat[: values.size // 2] = 0
        file[largest][...] = values


DAMAGES = {
    "kernel partly zeroed": lambda run: _zero_part_of_a_kernel(run / "weights.weights.h5"),
    "random bytes in the weights": lambda run: _overwrite(run / "weights.weights.h5", 4096),
    "truncated weights": lambda run: _truncate(run / "weights.weights.h5"),
    "garbled history": lambda run: (run / "history.json").write_text('{"val_acc": [0.1, '),
    "empty history": lambda run: (run / "history.json").write_text(""),
    "history without its metric": lambda run: (run / "history.json").write_text("{}"),
    "no checksums": lambda run: (run / "checksums.json").unlink(),
}


def _overwrite(path, offset):
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(np.random.default_rng(0).bytes(2048))


def _truncate(path):
    os.truncate(path, path.stat().st_size // 2)


@pytest.fixture(scope="module")
def finished_baseline(config, smoke_splits, tmp_path_factory):
    """A finished baseline in a cache of its own, trained once: (its cache, its weights)."""
    cache = tmp_path_factory.mktemp("finished")
    return cache, _baseline(config, smoke_splits, cache).model.get_weights()


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_run_is_set_aside_named_and_trained_again(
    damage, config, smoke_splits, finished_baseline, tmp_path
):
    cache, weights = finished_baseline
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    (run_dir,) = tmp_path.glob("baseline-*")
    DAMAGES[damage](run_dir)
    messages = []
    again = _baseline(config, smoke_splits, tmp_path, messages)
    assert not again.from_cache and again.run_dir == run_dir
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and (aside[0] / "settings.json").is_file()  # kept, not deleted
    assert len(messages) == 1 and str(run_dir) in messages[0], messages
    assert "set aside" in messages[0]
    for a, b in zip(weights, again.model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the same run, trained again
    assert _baseline(config, smoke_splits, tmp_path).from_cache


def test_unreadable_resume_state_is_set_aside(config, smoke_splits, tmp_path):
    first = _baseline(config, smoke_splits, tmp_path)
    (first.run_dir / "history.json").unlink()
    (first.run_dir / "backup").mkdir()
    (first.run_dir / "backup" / "training_metadata.json").write_text("{garbled")
    messages = []
    again = _baseline(config, smoke_splits, tmp_path, messages)
    assert not again.from_cache and "resume state" in messages[0]


# ------------------------------------------------------------------ smaller


def test_written_files_have_the_users_usual_mode(config, smoke_splits, tmp_path):
    run = _baseline(config, smoke_splits, tmp_path).run_dir
    mask = os.umask(0)
    os.umask(mask)
    for name in ("history.json", "settings.json", "checksums.json", "weights.weights.h5"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o666 & ~mask, name


def test_a_diverged_run_leaves_no_folder(config, smoke_splits, tmp_path):
    with pytest.raises(callbacks.TrainingDiverged):
        train.pretrain(
            config.replace(**{"pretrain.learning_rate": 1e30}), smoke_splits, tmp_path, verbose=0
        )
    assert list(tmp_path.iterdir()) == []


def _read_only(path, name="cache_dir"):
    raise PermissionError(f"{name}={str(path)!r} cannot be written (Read-only file system)")


def test_a_finished_run_loads_from_a_cache_that_cannot_be_written(
    config, smoke_splits, tmp_path, monkeypatch
):
    first = _baseline(config, smoke_splits, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in first.run_dir.iterdir()}
    monkeypatch.setattr(phases, "check_writable_dir", _read_only)
    assert _baseline(config, smoke_splits, tmp_path).from_cache
    assert {p: p.stat().st_mtime_ns for p in first.run_dir.iterdir()} == before
    with pytest.raises(PermissionError, match="Read-only"):  # what is not there cannot be trained
        _baseline(config.replace(**{"supervised.learning_rate": 3e-3}), smoke_splits, tmp_path)


def test_compare_runs_from_a_finished_read_only_cache(
    smoke_config, smoke_comparison, tmp_path, monkeypatch
):
    cache_dir = tmp_path / "cache"
    shutil.copytree(smoke_comparison.cache, cache_dir)
    monkeypatch.setattr(phases, "check_writable_dir", _read_only)
    monkeypatch.setattr(compare, "is_writable_dir", lambda path: False)
    lines = []
    metrics = compare.run_comparison(smoke_config, tmp_path / "again", cache_dir, 0, lines.append)
    assert all(phase["from_cache"] for phase in metrics["phases"].values())
    assert any("read-only" in line for line in lines)


# ------------------------------------------------------------------ data files


def test_a_named_data_folder_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(data.DataNotFoundError, match="nowhere' does not exist"):
        data.load_fashion_mnist()


def test_a_named_data_folder_missing_a_file_is_an_error(fake_fashion_mnist):
    folder, _ = fake_fashion_mnist
    (folder / data.FASHION_MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(data.DataNotFoundError, match="lacks t10k-labels-idx1-ubyte.gz"):
        data.load_fashion_mnist()


def test_image_and_label_counts_must_agree(fake_fashion_mnist, write_idx):
    folder, arrays = fake_fashion_mnist
    write_idx(folder / data.FASHION_MNIST_FILES["train_labels"], arrays["train_labels"][:50])
    with pytest.raises(ValueError, match="60 images but .*train-labels-idx1-ubyte.gz 50 labels"):
        data.load_fashion_mnist()


def test_labels_out_of_range_are_named(fake_fashion_mnist, write_idx):
    folder, arrays = fake_fashion_mnist
    write_idx(folder / data.FASHION_MNIST_FILES["test_labels"], arrays["test_labels"] + 5)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz holds label 14"):
        data.load_fashion_mnist()


def test_a_labels_file_of_only_its_magic_number_is_named(fake_fashion_mnist):
    folder, _ = fake_fashion_mnist
    path = folder / data.FASHION_MNIST_FILES["train_labels"]
    with gzip.open(path, "wb") as file:
        file.write(b"\x00\x00\x08\x01")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz has a truncated header"):
        data.load_fashion_mnist()


def _cli(*args, env=None):
    command = [sys.executable, "-m", "simclr_lab", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def test_info_does_not_call_random_bytes_found(tmp_path):
    for name in data.FASHION_MNIST_FILES.values():
        (tmp_path / name).write_bytes(np.random.default_rng(0).bytes(1000))
    result = _cli("info", env={data.DATA_ENV_VAR: str(tmp_path)})
    assert result.returncode == 0
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("fashion_mnist "))
    assert "unusable" in line and "not a readable gzip IDX file" in line and "found" not in line


@pytest.mark.parametrize("backend", ["nonsense", "torch"])
def test_an_unusable_backend_is_one_line_and_exit_2(backend):
    if backend == "torch" and __import__("importlib").util.find_spec("torch"):
        backend = "no-such-backend"
    for command in (("info",), ("compare", "--preset", "smoke")):
        result = _cli(*command, env={"KERAS_BACKEND": backend})
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"KERAS_BACKEND={backend!r}" in lines[0], lines
        assert "tensorflow" in lines[0]  # names the backends that work


def test_history_checksum_is_stored_for_every_run(config, smoke_splits, tmp_path):
    run = _baseline(config, smoke_splits, tmp_path).run_dir
    sums = json.loads((run / "checksums.json").read_text())
    assert sums["weights.weights.h5"] == cache.file_sha256(run / "weights.weights.h5")


# ------------------------------------------------------------------ what a hostile probe found
# Each test below failed on the code before it: a wrong result, a stuck run or a raw error.


def _stopped_after_one(config, splits, folder):
    """A 3-epoch baseline stopped (as by the Stop button) after its first epoch: its resume
    state is one epoch."""
    stop = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: setattr(stop.model, "stop_training", epoch == 1)
    )
    longer = config.replace(**{"supervised.epochs": 3})
    result = train.train_baseline(longer, splits, folder, callbacks=[stop], verbose=0)
    assert not result.finished
    return longer, result.run_dir


@pytest.fixture(scope="module")
def stopped_baseline(config, smoke_splits, tmp_path_factory):
    """`_stopped_after_one`, trained once: (the 3-epoch settings, the cache holding it)."""
    cache = tmp_path_factory.mktemp("stopped")
    longer, _ = _stopped_after_one(config, smoke_splits, cache)
    return longer, cache


def _copy_of(stopped_baseline, folder):
    """(settings, run folder) of a copy of the stopped baseline in `folder`."""
    longer, cache = stopped_baseline
    shutil.copytree(cache, folder, dirs_exist_ok=True)
    (run,) = folder.glob("baseline-*")
    return longer, run


RESUME_DAMAGES = {
    "checkpoint emptied (a kill mid-write)": lambda run: (
        run / "backup" / "latest.weights.h5"
    ).write_bytes(b""),
    "checkpoint truncated": lambda run: _truncate(run / "backup" / "latest.weights.h5"),
    "state says epoch 99": lambda run: _edit_state(run, epoch=99),
    "state deleted": lambda run: (run / "backup" / "state.json").unlink(),
    "history shorter than the state": lambda run: _edit_state(run, history={"loss": []}),
    "settings of another run": lambda run: (run / "settings.json").write_text('{"seed": 1}'),
}


def _edit_state(run, **changes):
    path = run / "backup" / "state.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("damage", RESUME_DAMAGES, ids=list(RESUME_DAMAGES))
def test_a_damaged_resume_state_is_set_aside_and_the_run_trains_from_the_start(
    damage, smoke_splits, stopped_baseline, tmp_path
):
    longer, run = _copy_of(stopped_baseline, tmp_path)
    RESUME_DAMAGES[damage](run)
    messages = []
    again = train.train_baseline(longer, smoke_splits, tmp_path, verbose=0, log=messages.append)
    assert again.finished and len(again.history["val_acc"]) == 3
    named = ("resume state", "settings.json is not the settings of its key")
    assert any(any(n in m for n in named) and "set aside" in m for m in messages), messages
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and (aside[0] / "backup").is_dir()  # kept, not deleted
    assert train.train_baseline(longer, smoke_splits, tmp_path, verbose=0).from_cache


def test_a_good_resume_state_resumes_where_it_stopped(smoke_splits, stopped_baseline, tmp_path):
    longer, run = _copy_of(stopped_baseline, tmp_path)
    state = json.loads((run / "backup" / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]["val_acc"]) == 1
    resumed = train.train_baseline(longer, smoke_splits, tmp_path, verbose=0)
    whole = train.train_baseline(longer, smoke_splits, tmp_path / "whole", verbose=0)
    assert resumed.history == whole.history
    assert not (run / "backup").exists()


def test_a_run_copied_under_another_key_is_refused(config, smoke_splits, tmp_path):
    seed0 = _baseline(config, smoke_splits, tmp_path)
    seed1 = _baseline(config.replace(seed=1), smoke_splits, tmp_path)
    shutil.rmtree(seed0.run_dir)
    shutil.copytree(seed1.run_dir, seed0.run_dir)
    messages = []
    again = _baseline(config, smoke_splits, tmp_path, messages)
    assert not again.from_cache and "settings.json is not the settings of its key" in messages[0]
    for a, b in zip(again.model.get_weights(), seed0.model.get_weights()):
        np.testing.assert_array_equal(a, b)  # seed 0's run, trained again


def test_a_history_of_nan_is_refused_even_with_its_checksum(config, smoke_splits, tmp_path):
    run = _baseline(config, smoke_splits, tmp_path).run_dir
    history = json.loads((run / "history.json").read_text())
    history = {name: [float("nan")] * len(values) for name, values in history.items()}
    text = json.dumps(history)
    (run / "history.json").write_text(text)
    sums = json.loads((run / "checksums.json").read_text())
    sums["history.json"] = hashlib.sha256(text.encode()).hexdigest()
    (run / "checksums.json").write_text(json.dumps(sums))
    messages = []
    again = _baseline(config, smoke_splits, tmp_path, messages)
    assert not again.from_cache and "not finite" in messages[0]


def test_a_second_process_of_the_same_run_waits_and_then_loads_it(config, smoke_splits, tmp_path):
    run = train.supervised_run("baseline", config, smoke_splits, cache_dir=tmp_path)[0]
    messages, results = [], []
    with run.training_lock():  # another process training this run
        waiting = threading.Thread(
            target=lambda: results.append(_baseline(config, smoke_splits, tmp_path, messages))
        )
        waiting.start()
        for _ in range(600):
            if messages:
                break
            time.sleep(0.1)
        assert "another process is training this run" in messages[0]
        assert waiting.is_alive()  # it waits, writing nothing
    waiting.join(timeout=600)
    assert results and results[0].finished


def test_the_device_count_is_in_the_key_and_one_device_keeps_the_old_keys(
    config, smoke_splits, monkeypatch
):
    one = train.pretraining_run(config, smoke_splits).settings
    assert "devices" not in one  # as before: shipped and cached runs keep matching
    monkeypatch.setattr(train, "device_count", lambda settings: 2)
    two = train.pretraining_run(config, smoke_splits).settings
    assert two == {**one, "devices": 2}
    baseline = train.supervised_run("baseline", config, smoke_splits)[0].settings
    assert baseline["devices"] == 2


def _flat(splits, count=64):
    empty = splits.unlabelled[:0]
    no_labels = np.zeros(0, "int32")
    return Splits("folder", splits.unlabelled[:count], empty, no_labels, empty, no_labels, ())


def test_a_flat_folder_trains_the_method_asked_for(config, smoke_splits, tmp_path):
    flat = _flat(smoke_splits)
    changes = {"pretrain.batch_size": 16, "pretrain.labelled_per_step": None}
    histories = {}
    for method in ("simclr", "barlow_twins", "simsiam", "positives_only"):
        asked = config.replace(**changes, **{"pretrain.method": method})
        result = train.pretrain(asked, flat, tmp_path, verbose=0)
        assert result.model.method == method
        histories[method] = result.history["c_loss"]
    assert len({tuple(h) for h in histories.values()}) == 4  # four different trainings


def test_shipped_results_are_checked_against_their_checksums(tmp_path):
    for name in shipped.RESULTS:  # the package's own pass
        assert shipped.verified_result(name).is_file()
    assert study.load(own=tmp_path / "none.jsonl") and study.load_curve()
    for name in (*shipped.RESULTS, shipped.RESULT_SUMS):
        shutil.copy(shipped.SHIPPED_DIR / name, tmp_path / name)
    edited = tmp_path / "sweep_results.json"
    edited.write_text(edited.read_text().replace("0.", "0.9", 1))
    with pytest.raises(shipped.DamagedShippedRun, match="sweep_results.json fail"):
        shipped.verified_result("sweep_results.json", tmp_path)
    (tmp_path / "study_results.jsonl").unlink()
    with pytest.raises(shipped.DamagedShippedRun, match="study_results.jsonl cannot be"):
        shipped.verified_result("study_results.jsonl", tmp_path)


def test_a_missing_shipped_sweep_is_refused_not_recomputed_for_hours(monkeypatch, tmp_path):
    # an install without the file
    monkeypatch.setattr(sweep, "SHIPPED_RESULTS", tmp_path / "sweep_results.json")
    with pytest.raises(shipped.DamagedShippedRun, match="use_shipped=False"):
        sweep.shipped_record({"any": "settings"})


def test_a_jax_process_whose_partners_never_come_says_so_and_ends(tmp_path):
    command = [sys.executable, "-m", "simclr_lab", "compare", "--preset", "smoke"]
    command += ["--coordinator", "localhost:23457", "--processes", "2", "--process-id", "0"]
    command += ["--join-timeout", "3", "--out", str(tmp_path / "out")]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    ended = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert ended.returncode != 0
    assert "Process 0 of 2: joining the others at localhost:23457" in ended.stdout
    assert "waiting up to 3 s" in ended.stdout


def test_a_one_step_bench_without_warmup_runs(tmp_path):
    from simclr_lab.studies.bench import run_bench

    result = run_bench(32, 64, 25, steps=1, warmup=0)
    assert result["images_per_s"] > 0


def test_without_any_backend_the_import_names_the_extras_to_install():
    hide_tensorflow = (
        "import importlib.util as u; real = u.find_spec; "
        "u.find_spec = lambda name, *a: None if name == 'tensorflow' else real(name, *a); "
        "import simclr_lab"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", hide_tensorflow], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0
    assert "BackendError" in result.stderr and "pip install 'simclr-lab[cpu]'" in result.stderr
