"""The lessons' widgets under a headless notebook client on one CPU core: no stalls.

Notebook clients built on nbclient (`jupyter execute`, `jupyter nbconvert --execute`, the
Binder check) once stalled on lesson 1: the explorer drew into an `Output` widget by
displaying into it while its cell ran, the client mirrors such a widget by sending its new
state to the kernel on the shell channel, and that send, made while the client awaited the
cell's reply on the same socket, could consume the reply's wake-up. On one core that happened
often, and the client then sat out its whole timeout before it read the reply and went on as if
nothing had happened: a stall, not an error. So a notebook of every widget the lessons show
(the explorers, the live dashboard during a fit, the settings lab) runs here under nbclient,
each cell's wait is measured by the client, and any message the client itself had to send the
kernel while a cell ran (the cause, which shows whether or not this run lost the race) fails
the test.

The lessons themselves run once, under nbval, each kernel on one core (see conftest.py at the
top of the repository); nbval's client mirrors no widget, so it cannot stall this way.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CELL_TIMEOUT_S = 120  # generous for a busy machine; a stall takes all of it

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")

# What the lessons show, on the smoke preset: lessons 1 and 3's explorers, lesson 4's live
# dashboard during a fit and its settings lab.
WIDGET_CELLS = [
    """import numpy as np
from simclr_lab.runs import train
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources import data
config = get_preset("smoke", **{"pretrain.epochs": 1})
splits = data.load_splits(config.data)""",
    """from simclr_lab.faces.widgets import AugmentationExplorer
AugmentationExplorer(splits.labelled_images[:3])""",
    """from simclr_lab.faces.widgets import TemperatureExplorer
rng = np.random.default_rng(0)
TemperatureExplorer(rng.normal(size=(64, 16)), rng.normal(size=(64, 16)), temperature=0.1)""",
    """from simclr_lab.evaluate import KNNMonitor
from simclr_lab.faces.dashboard import LiveDashboard
dashboard = LiveDashboard("pretraining", batch_size=config.pretrain.batch_size, update_every=1)
run = train.pretrain(config, splits, callbacks=[KNNMonitor(splits), dashboard], verbose=0)
assert dashboard.frames > 1, dashboard.frames""",
    """from simclr_lab.faces.widgets import SettingsLab
SettingsLab(lambda temperature, min_area: run, splits, epochs=1)""",
]


def run_notebook(path: Path, timeout: int) -> list[dict]:
    """Execute one notebook with nbclient; per code cell, how long the client waited for it
    (from sending the request to having its reply and all its output) and which messages
    the client itself sent the kernel in that time."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        startup_timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    sent: dict[int, float] = {}
    cells: list[dict] = []
    writes: list[str] = []  # what the client sent the kernel while a cell ran

    def on_start(notebook):
        channel = client.kc.shell_channel
        send = channel.send

        def recorded_send(msg):
            if msg["msg_type"] != "execute_request":
                writes.append(msg["msg_type"])
            send(msg)

        channel.send = recorded_send

    def on_execute(cell, cell_index):
        writes.clear()
        sent[cell_index] = time.monotonic()

    def on_executed(cell, cell_index, execute_reply):
        waited = time.monotonic() - sent[cell_index]
        first_line = cell.source.strip().splitlines()[0][:60]
        cells.append(
            {"index": cell_index, "source": first_line, "waited_s": waited, "writes": writes[:]}
        )

    client.on_notebook_start = on_start
    client.on_cell_execute = on_execute
    client.on_cell_executed = on_executed
    client.execute()
    return cells


@pytest.fixture
def widget_notebook(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in WIDGET_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = tmp_path / "widgets.ipynb"
    nbformat.write(notebook, path)
    return path


def _one_core():
    """Runs in the child before it starts: it, and so its kernel, may use one core only."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


@pytest.mark.slow
def test_the_lessons_widgets_never_keep_a_headless_client_waiting(widget_notebook, tmp_path):
    report = tmp_path / "cells.json"
    command = [sys.executable, __file__, str(widget_notebook), str(report)]
    result = subprocess.run(
        command,
        env={
            **os.environ,
            "SIMCLR_LAB_CACHE": str(tmp_path / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
        preexec_fn=_one_core,
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT_S * 20,
    )
    assert result.returncode == 0, (
        f"the widgets' notebook did not finish:\n{result.stderr[-3000:]}"
    )
    cells = json.loads(report.read_text())
    assert len(cells) == len(WIDGET_CELLS), cells
    problems = [
        f"cell {c['index']} ({c['source']!r}) kept the client waiting {c['waited_s']:.0f} s, "
        f"about its whole {CELL_TIMEOUT_S} s timeout"
        for c in cells
        if c["waited_s"] >= 0.9 * CELL_TIMEOUT_S
    ] + [
        f"while cell {c['index']} ({c['source']!r}) ran the client wrote {c['writes']} to the "
        "kernel, which can leave it blind to the cell's reply until its timeout"
        for c in cells
        if c["writes"]
    ]
    assert not problems, "\n" + "\n".join(problems)


PINNED = """import os
cache = os.environ["SIMCLR_LAB_CACHE"]
assert len(os.sched_getaffinity(0)) == 1, os.sched_getaffinity(0)
assert not os.path.exists(cache) or not os.listdir(cache), cache  # fresh
with open({seen!r}, "w") as file:  # where the test finds it after the run
    file.write(cache)"""

# Under pytest-xdist, each worker's numpy and scikit-learn use one thread (conftest.py);
# alone, pytest leaves their settings as they were (here: unset).
ONE_THREAD = """import os
def test_blas_threads():
    from threadpoolctl import threadpool_info
    import numpy, sklearn.linear_model
    asked = [os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")]
    assert asked == ["1", "1"] if {workers} else asked == [None, None], asked
    threads = {{i["internal_api"]: i["num_threads"] for i in threadpool_info()}}
    assert threads["openblas"] == 1 or not {workers}, threads
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["alone", "two workers"])
def test_nbval_runs_each_lesson_on_one_core_with_a_fresh_cache(workers, tmp_path):
    """What conftest.py does for the lessons: under nbval each kernel may use one core (its
    worker's own under pytest-xdist) and starts from a fresh cache, which the run removes
    when it ends; under pytest-xdist each worker's BLAS uses one thread."""
    import nbformat

    seen = tmp_path / "seen"
    pinned = PINNED.format(seen=str(seen))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(pinned)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "pinned.ipynb")
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest"]
    (tmp_path / "test_one_thread.py").write_text(ONE_THREAD.format(workers=bool(workers)))
    command += ["--nbval-lax", *workers, str(tmp_path)]  # pinned.ipynb, test_one_thread.py
    inherited = ("SIMCLR_LAB_TEST_LESSONS_ROOT", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in inherited and "PYTEST_XDIST" not in k}
    ran = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and "2 passed" in ran.stdout, ran.stdout[-3000:]
    cache = Path(seen.read_text())
    assert cache.parent.name.startswith("simclr-lab-one-core-"), cache
    assert not cache.parent.exists(), f"{cache.parent} was left after the run"


if __name__ == "__main__":
    notebook_path, report_path = Path(sys.argv[1]), Path(sys.argv[2])
    timings = run_notebook(notebook_path, CELL_TIMEOUT_S)
    report_path.write_text(json.dumps(timings, indent=1))
