"""pytest's settings for the lessons: when nbval runs them (`--nbval-lax notebooks`), each
lesson's kernel may use one CPU core only, as on Binder, with one fresh cache for them all; each
cell must finish within CELL_TIMEOUT_S. Under pytest-xdist each worker's kernels get a core of
their own, so two lessons run side by side without sharing one."""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

KERNEL_NAME = "simclr-lab-one-core"
CELL_TIMEOUT_S = 120  # generous for a busy machine; a stalled client takes all of it


def _kernel_spec(core: int, cache: Path) -> dict:
    """A Python kernel pinned to `core` (as `taskset -c core` would) that uses `cache`."""
    launch = (
        f"import os; os.sched_setaffinity(0, {{{core}}}); "
        "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()"
    )
    return {
        "argv": [sys.executable, "-c", launch, "-f", "{connection_file}"],
        "display_name": f"Python 3 (core {core})",
        "language": "python",
        "env": {"SIMCLR_LAB_CACHE": str(cache)},
    }


LESSONS_ROOT_VAR = "SIMCLR_LAB_TEST_LESSONS_ROOT"  # from the pytest process to its workers


# With several pytest-xdist workers on as many cores, numpy's OpenBLAS and scikit-learn's
# OpenMP would each start a thread per core in every worker; their threads spin while they
# wait, so a probe fitted beside another worker's training ran 7x slower (12.5 s against
# 1.8 s). One thread each per worker; set before the workers start, which inherit it.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        for name, value in ONE_THREAD.items():
            os.environ.setdefault(name, value)
    nbval = config.getoption("nbval_lax", False) or config.getoption("nbval", False)
    if not nbval or not hasattr(os, "sched_setaffinity"):
        return
    if LESSONS_ROOT_VAR not in os.environ:  # the first pytest process: xdist's workers inherit
        # One folder for the run, removed by this process when the run ends (xdist's workers
        # end without their own clean-up): one fresh cache for every lesson, as a learner's (a
        # run that one lesson is training is locked, so another lesson that needs it waits and
        # loads it), and each worker's kernel spec.
        root = Path(tempfile.mkdtemp(prefix=f"{KERNEL_NAME}-"))
        config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        os.environ[LESSONS_ROOT_VAR] = str(root)
    root = Path(os.environ[LESSONS_ROOT_VAR])
    cores = sorted(os.sched_getaffinity(0))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ...
    core = cores[int(worker.removeprefix("gw")) % len(cores)]
    spec = root / worker / "kernels" / KERNEL_NAME / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)  # the controller writes gw0's too
    spec.write_text(json.dumps(_kernel_spec(core, root / "cache")))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(root / worker), os.getenv("JUPYTER_PATH")])
    )
    if config.option.nbval_kernel_name is None and not config.option.nbval_current_env:
        config.option.nbval_kernel_name = KERNEL_NAME
    if float(config.option.nbval_cell_timeout) == 2000:  # nbval's default: not asked for
        config.option.nbval_cell_timeout = CELL_TIMEOUT_S


# Tests that share one expensive session or module fixture go to one pytest-xdist worker (with
# `--dist loadgroup`), so it is built once; a lesson's cells stay together and in order.
SHARED_FIXTURES = (
    "smoke_comparison",
    "one_epoch_comparisons",
    "one_steps",
    "whole_pretraining",
    "cpu_splits",
    "site",
    "finished_baseline",
    "stopped_baseline",
    "trio",
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.path.suffix == ".ipynb":
            group = item.path.stem
        else:
            group = next(
                (f for f in SHARED_FIXTURES if f in getattr(item, "fixturenames", ())), None
            )
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
