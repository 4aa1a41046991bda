"""Data-parallel training (`simclr_lab.runs.distribute`) on simulated CPU devices.

JAX fixes its devices when it starts, so every check that trains runs
tests/distributed_worker.py in a fresh Python with KERAS_BACKEND=jax and
XLA_FLAGS=--xla_force_host_platform_device_count=N, under a time limit.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from simclr_lab.config import Config
from simclr_lab.runs import distribute
from simclr_lab.sources.batching import PairedStream, plan_batches

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = WORKER.parents[1]
TOLERANCE = 1e-5  # float32: what the order of the sums over the batch may change


def _environment(devices: int, backend: str = "jax") -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KERAS_DISTRIB")}
    env.update(
        KERAS_BACKEND=backend,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def _start(args, devices: int, backend: str = "jax") -> subprocess.Popen:
    # Files, not pipes: a process blocked on a full pipe would stall the others' collectives.
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=_environment(devices, backend),
        stdout=out,
        stderr=err,
        text=True,
        start_new_session=True,  # its own process group, so a stuck one is stopped whole
    )
    process.files = out, err
    return process


def _printed(process) -> tuple[str, str]:
    texts = []
    for file in process.files:
        file.seek(0)
        texts.append(file.read())
        file.close()
    return texts[0], texts[1]


def _wait(processes: list, limit_s: float) -> list[str]:
    """Each process's stdout once all have ended well; all are stopped after `limit_s`."""
    deadline, printed = time.monotonic() + limit_s, []
    try:
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
        for process in processes:
            out, err = _printed(process)
            assert process.returncode == 0, err[-4000:]
            printed.append(out)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {limit_s:.0f} s; stopped")
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return printed


def _finish(processes: list, limit_s: float) -> list:
    """Each process's last stdout line as JSON; all are stopped once `limit_s` has passed."""
    return [json.loads(out.strip().splitlines()[-1]) for out in _wait(processes, limit_s)]


def _worker(devices: int, *args, limit_s: float = 600, backend: str = "jax"):
    return _finish([_start([WORKER, *args], devices, backend)], limit_s)[0]


def _largest_difference(reference, other) -> float:
    """Largest |difference| over a list of arrays, relative to each array's largest value."""
    return max(
        float(np.max(np.abs(np.subtract(b, a))) / max(np.max(np.abs(a)), 1e-30))
        for a, b in zip(reference, other)
    )


def _assert_arrays_equal(reference, other):
    """rtol 1e-5, and an atol of 1e-5 of each array's largest value (near-zero entries of a
    sum over the batch carry the rounding of its large terms)."""
    assert len(reference) == len(other)
    for a, b in zip(reference, other):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, rtol=TOLERANCE, atol=TOLERANCE * np.max(np.abs(a)))


def _check_one_step(result: dict, counts) -> dict:
    one, largest = result["1"], {}
    for count in counts:
        many = result[count]
        assert many["initial"] == one["initial"]  # the same weights to start from
        for name in ("c_loss", "c_acc"):
            np.testing.assert_allclose(many[name], one[name], rtol=TOLERANCE)
        _assert_arrays_equal(one["grads"], many["grads"])
        _assert_arrays_equal(one["batchnorm"], many["batchnorm"])
        # The bug, computed on the same projections: each device with its own negatives only.
        bug = abs(many["per_device_c_loss"] - one["c_loss"]) / one["c_loss"]
        assert bug > 1000 * TOLERANCE, "a per-device loss would pass this test unnoticed"
        largest[count] = {
            "c_loss": abs(many["c_loss"] - one["c_loss"]) / one["c_loss"],
            "c_acc": abs(many["c_acc"] - one["c_acc"]),
            "gradients": _largest_difference(one["grads"], many["grads"]),
            "batchnorm": _largest_difference(one["batchnorm"], many["batchnorm"]),
            "per-device c_loss (the bug)": bug,
            "per-device c_acc (the bug)": abs(many["per_device_c_acc"] - one["c_acc"]),
        }
    print(json.dumps(largest, indent=1))
    return largest


@pytest.fixture(scope="module")
def one_steps():
    """One step of each loss on 1, 2 and 4 devices, in one process (one start of JAX)."""
    return _worker(4, "step", "ntxent,infonce", "2", "4", limit_s=600)


def test_one_step_on_2_and_4_devices_is_the_one_device_step(one_steps):
    """NT-Xent with BatchNorm in the head: one step's loss, contrastive accuracy, gradients
    and BatchNorm moving statistics on 2 and 4 devices are those of one device given the same
    global batch; the loss each device would compute from its own images is not."""
    _check_one_step(one_steps["ntxent"], ("2", "4"))


@pytest.mark.slow
def test_one_step_with_infonce_on_2_and_4_devices(one_steps):
    _check_one_step(one_steps["infonce"], ("2", "4"))


def test_bad_device_requests_are_refused_before_training(tmp_path):
    cases = {
        "--devices|4": "distribute.devices=4 but JAX sees 2 devices (cpu:0, cpu:1)",
        "--devices|all|--set|pretrain.batch_size=127": (
            "pretrain.batch_size=127 is 111 unlabelled + 16 labelled images a step, which do "
            "not split evenly over 2 devices"
        ),
        "--devices|2|--set|supervised.batch_size=25": (
            "supervised.batch_size=25 does not split evenly over 2 devices"
        ),
    }
    found = _worker(2, "refusals", tmp_path, *cases, limit_s=300)
    for (case, expected), result in zip(cases.items(), found):
        assert result["status"] == 2, (case, result)
        assert expected in result["error"] and len(result["error"].splitlines()) == 1, result
        assert not result["trained"], case


def test_tensorflow_refuses_several_devices_before_training(tmp_path):
    found = _worker(1, "refusals", tmp_path, "--devices|2", limit_s=300, backend="tensorflow")
    assert found[0]["status"] == 2 and not found[0]["trained"]
    assert "JAX backend only; this is the tensorflow backend" in found[0]["error"]
    assert "KERAS_BACKEND=jax" in found[0]["error"]


def test_one_device_needs_no_distribution():
    where = distribute.spread(Config())  # distribute.devices=1, on any backend
    assert where.distribution is None and where.callbacks == []
    stream = object()
    assert where.local(stream) is stream
    with distribute.over_devices(Config(), pretraining=(500, 25), supervised=25) as inside:
        assert inside == where and distribute.active() == where


def test_each_process_reads_its_own_rows():
    plan = plan_batches(48, 20, 16, 4)  # 12 unlabelled + 4 labelled a step
    unlabelled = np.arange(48 * 2).reshape(48, 1, 1, 2).astype("uint8")
    labelled = np.arange(20 * 2).reshape(20, 1, 1, 2).astype("uint8")
    stream = PairedStream(unlabelled, labelled, np.arange(20) % 10, plan, epochs=2, seed=3)
    shards = [distribute.ProcessRows(stream, index, 2) for index in range(2)]
    assert shards[1].steps_per_epoch == stream.steps_per_epoch and len(shards[1]) == len(stream)
    for step in (0, 5):
        (whole_u, whole_l), whole_y = stream[step]
        parts = [shard[step] for shard in shards]
        np.testing.assert_array_equal(np.concatenate([p[0][0] for p in parts]), whole_u)
        np.testing.assert_array_equal(np.concatenate([p[0][1] for p in parts]), whole_l)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole_y)
        assert len(parts[0][0][0]) == 6 and len(parts[0][1]) == 2
    shards[0].set_start_epoch(1)  # the stream's own, so a resumed run reads the same rows
    assert stream.start_epoch == 1


def test_the_plan_says_the_global_batch_and_each_device_share():
    import keras

    mesh = keras.distribution.DeviceMesh((2,), ["batch"], ["cpu:0", "cpu:1"])
    where = distribute.Spread(2, 1, 0, distribute._GlobalBatch(device_mesh=mesh))
    assert where.describe(128).endswith("global batch 128 = 64 per device x 2")
    assert "56 + 8 per device); supervised batch 32 = 16 per device x 2" in (
        where.describe_steps((112, 16), 32)
    )
    assert "which does not split evenly" in where.describe(525)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_loopback_agree_with_one(tmp_path):
    """Two processes, each with 2 simulated CPU devices (JAX's CPU collectives over
    127.0.0.1), pretrain for 3 steps through `train.pretrain`; each reads its half of every
    batch. Their first step is the one-process step; after it, Adam (eps 1e-7) turns the
    rounding in gradients near zero into ~lr weight differences, so later figures agree
    within 1e-3 and weights within a few lr."""
    coordinator = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    runs = [
        _start([WORKER, "pretrain", "all", tmp_path / f"cache{i}", coordinator, 2, i], 2)
        for i in range(2)
    ]
    runs.append(_start([WORKER, "pretrain", "1", tmp_path / "cache-one"], 1))  # alongside
    first, second, one = _finish(runs, limit_s=900)
    seconds = time.monotonic() - start
    assert "data-parallel on 4 devices" in first["spread"] and "in 2 processes" in first["spread"]
    assert "global batch 64 = 16 per device x 4" in first["dashboard"]
    assert first["history"] == second["history"]  # one program: the same numbers in both
    for a, b in zip(first["weights"], second["weights"]):
        np.testing.assert_array_equal(a, b)
    for name in ("c_loss", "c_acc"):
        assert len(first["steps"][name]) == 3
        np.testing.assert_allclose(first["steps"][name][0], one["steps"][name][0], rtol=1e-5)
        np.testing.assert_allclose(first["steps"][name], one["steps"][name], rtol=1e-3)
    for name, values in one["history"].items():
        np.testing.assert_allclose(first["history"][name], values, rtol=1e-3, err_msg=name)
    apart = np.abs(
        np.concatenate([np.subtract(a, b) for a, b in zip(first["weights"], one["weights"])])
    )
    median, near_all, largest = np.quantile(apart, [0.5, 0.99, 1.0])
    # Adam moves each weight by up to lr (1e-3) a step: a tenth of that for most weights, one
    # step for all but 1%, and a few steps at most.
    assert median < 1e-4 and near_all < 1e-3 and largest < 1e-2, (median, near_all, largest)
    print(
        f"two processes beside one: {seconds:.0f} s; "
        f"weights apart: median {median:.2g}, most {largest:.2g}"
    )


@pytest.mark.slow
def test_compare_smoke_on_2_devices_matches_one_device(one_epoch_comparisons):
    """`simclr-lab compare --preset smoke --devices all` for one epoch a phase on 2 simulated
    devices: the same figures as the same comparison on one device (both run side by side by
    `one_epoch_comparisons`). The baseline and the first pretraining steps agree to rounding;
    Adam then turns rounding into ~lr weight differences, which move a few of the 300 test
    predictions of these near-chance one-epoch models."""
    two_devices = one_epoch_comparisons["jax, 2 devices"]
    assert "global batch 128 = 64 per device x 2 (a pretraining step: 112 + 16" in (
        two_devices.printed
    )
    metrics = {
        "1": json.loads(
            (one_epoch_comparisons["jax"].folder / "out" / "metrics.json").read_text()
        ),
        "all": json.loads((two_devices.folder / "out" / "metrics.json").read_text()),
    }
    one, two = metrics["1"], metrics["all"]
    assert (one["devices"], two["devices"]) == (1, 2)
    for name, values in one["phases"]["baseline"]["history"].items():
        np.testing.assert_allclose(two["phases"]["baseline"]["history"][name], values, rtol=1e-5)
    for phase in ("pretraining", "finetuning"):
        for name, values in one["phases"][phase]["history"].items():
            close = {"rtol": 1e-2} if "loss" in name else {"atol": 0.05}
            np.testing.assert_allclose(two["phases"][phase]["history"][name], values, **close)
    for name, scores in one["frozen_features"].items():
        for score, value in scores.items():
            assert abs(two["frozen_features"][name][score] - value) <= 0.05, (name, score)


@pytest.mark.slow
def test_bench_times_the_step_on_2_simulated_devices_it_asks_for_itself():
    """`KERAS_BACKEND=jax simclr-lab bench --devices 2`, with no XLA_FLAGS of its own: the CLI
    asks JAX for 2 CPU devices, each takes one step's batch, and the figures say so."""
    env = _environment(1)
    del env["XLA_FLAGS"]
    args = ["bench", "--devices", "2", "--batch", "41", "--steps", "1", "--warmup", "1"]
    ran = subprocess.run(
        [sys.executable, "-m", "simclr_lab", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.split("BENCH_JSON ", 1)[1])
    assert result["devices"] == 2 and result["batch_size"] == 82  # 2 x (16 + 25 labelled)
    assert result["images_per_s_per_device"] == pytest.approx(result["images_per_s"] / 2)
    assert "over 2 devices, 41 images each" in ran.stdout
