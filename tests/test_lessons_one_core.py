"""Every lesson runs headless on a single CPU core, each cell well within its time limit.

Notebook clients (nbclient, which `jupyter execute`, `jupyter nbconvert --execute`, nbval
and the Binder check use) once stalled on lesson 1: the explorer drew into an `Output`
widget by displaying into it while its cell ran, the client mirrors such a widget by
sending its new state to the kernel on the shell channel, and that send, made while the
client awaited the cell's reply on the same socket, could consume the reply's wake-up. On
one core that happened often, and the client then sat out its whole timeout before it read
the reply and went on as if nothing had happened: a stall, not an error. So each cell's wait
is measured by the client, and any message the client itself had to send the kernel while
a cell ran (the cause, which shows whether or not this run lost the race) fails the test.

The client and its kernel are pinned to one CPU, as `taskset -c 0` would, and run the smoke
preset with one fresh cache shared by the lessons, in their order.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(path.name for path in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
CELL_TIMEOUT_S = 120  # generous for a busy machine; a stall takes all of it

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity"),
]


def run_lesson(path: Path, timeout: int) -> list[dict]:
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


@pytest.fixture(scope="module")
def lesson_env(tmp_path_factory):
    env = dict(os.environ)
    env.update(
        SIMCLR_LAB_PRESET="smoke",
        SIMCLR_LAB_CACHE=str(tmp_path_factory.mktemp("cache")),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    env.pop("SIMCLR_LAB_ARTIFACTS", None)
    return env


def _one_core():
    """Runs in the child before it starts: it, and so its kernel, may use one core only."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def test_every_lesson_is_found():
    assert len(LESSONS) >= 6, LESSONS


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_finishes_on_one_core(name, lesson_env, tmp_path):
    report = tmp_path / "cells.json"
    command = [sys.executable, __file__, str(NOTEBOOKS / name), str(report)]
    result = subprocess.run(
        command,
        env=lesson_env,
        preexec_fn=_one_core,
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT_S * 20,
    )
    assert result.returncode == 0, f"{name} did not finish:\n{result.stderr[-3000:]}"
    cells = json.loads(report.read_text())
    assert cells, f"{name}: no code cell ran"
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
    assert not problems, f"{name}:\n" + "\n".join(problems)


if __name__ == "__main__":
    notebook_path, report_path = Path(sys.argv[1]), Path(sys.argv[2])
    timings = run_lesson(notebook_path, CELL_TIMEOUT_S)
    report_path.write_text(json.dumps(timings, indent=1))
