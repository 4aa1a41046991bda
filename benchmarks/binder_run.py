"""The lessons as Binder runs them: one after another, one CPU core, float32, a clean cache.

    python benchmarks/binder_run.py                # every lesson: README, What fits Binder
    python benchmarks/binder_run.py --lessons 01 04

Binder gives about one CPU core and 1-2 GB, usually without native bfloat16. This script pins
itself and every kernel it starts to one core (as `taskset -c 0` does), sets
`SIMCLR_LAB_PRECISION=float32` and `SIMCLR_LAB_PRESET=cpu`, and points `SIMCLR_LAB_CACHE` at
an empty folder, so only what ships with the package (the pretrained encoder) is there. It
executes copies of the lessons (the stored notebooks are not touched) and records per lesson
the wall time and the kernel process's peak resident memory (VmHWM), appending one JSON line
to `binder_run.jsonl` and printing the Markdown table for README's "What fits Binder".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simclr_lab.runs.devices import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("binder_run.jsonl")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB (2**20 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def run_lesson(path: Path, workdir: Path, timeout: int) -> dict:
    """Execute a copy of one lesson in `workdir`; wall time and the kernel's peak memory."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    peak = {}
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        try:
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
        finally:
            peak["mb"] = peak_rss_mb(pid)  # before the kernel shuts down
    return {"lesson": path.name, "seconds": time.perf_counter() - start, "peak_mb": peak["mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lessons", nargs="*", default=[], help="prefixes, e.g. 01 04 (default: every lesson)"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take")
    parser.add_argument("--preset", default="cpu", help="smoke: check the script in a minute")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # kernels inherit it
    lessons = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    if args.lessons:
        lessons = [p for p in lessons if p.name[:2] in args.lessons]
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as work:
        os.environ.update(
            SIMCLR_LAB_CACHE=cache,
            SIMCLR_LAB_PRESET=args.preset,
            SIMCLR_LAB_PRECISION="float32",
            PYTHONPATH=str(ROOT),
        )
        rows = []
        for path in lessons:
            row = run_lesson(path, Path(work), args.timeout)
            print(
                f"{row['lesson']}: {row['seconds']:.0f} s, peak {row['peak_mb']:.0f} MB",
                flush=True,
            )
            rows.append(row)
    record = {
        "preset": args.preset,
        "machine": cpu_name(),
        "cores": 1,
        "precision": "float32",
        "date": time.strftime("%Y-%m-%d"),
        "lessons": rows,
        "total_seconds": sum(r["seconds"] for r in rows),
    }
    if args.preset == "cpu":  # only the real measurement is kept
        with open(RESULTS, "a") as file:
            file.write(json.dumps(record) + "\n")
    print(f"\nOne core of {record['machine']}, float32, a cache empty but for the shipped runs:\n")
    print("| lesson | wall time | peak memory (kernel) |\n| --- | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['lesson']} | {row['seconds'] / 60:.1f} min "
            f"| {row['peak_mb'] / 1024:.2f} GiB |"
        )
    print(f"| **all** | **{record['total_seconds'] / 60:.1f} min** | |")


if __name__ == "__main__":
    main()
