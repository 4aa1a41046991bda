"""Pretraining throughput of simclr-lab against the reference recipe, alternately, in rounds.

    python benchmarks/side_by_side.py --rounds 3

Each round runs, at 32x32 (Fashion-MNIST padded) and at 96x96 (random images, STL-10's
shape), batch 525 = 500 + 25: the reference recipe's pretraining (`reference_recipe.py`
beside this file, written from the recipe's facts, by default), then
`simclr-lab bench` in each of `--precisions` (float32 and auto by default; auto is bfloat16
where this machine computes it natively). It prints the ratio ours / reference per round and
the median, and writes every figure as JSON. Without the reference script, it measures ours alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REFERENCE_ARGS = {
    32: ["--data", "fashion_mnist", "--num-unlabeled", "10000", "--num-labeled", "500"],
    96: [
        "--data",
        "random96",
        "--num-unlabeled",
        "2500",
        "--num-labeled",
        "125",
        "--num-test",
        "525",
    ],
}


def _json_line(output: str, prefix: str) -> dict:
    for line in reversed(output.splitlines()):
        if line.startswith(prefix):
            return json.loads(line[len(prefix) :])
    raise RuntimeError(f"no {prefix.strip()} line in the output:\n{output[-2000:]}")


def reference_images_per_s(script: Path, size: int) -> float:
    command = [
        sys.executable,
        str(script),
        *REFERENCE_ARGS[size],
        "--epochs",
        "1",
        "--phases",
        "pretrain",
        "--no-summary",
        "--verbose",
        "0",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return _json_line(result.stdout, "RESULT_JSON ")["phases"]["pretrain"][
        "post_warmup_images_per_s"
    ]


def ours_images_per_s(size: int, steps: int, precision: str) -> tuple[float, str]:
    """simclr-lab's whole pretraining step in images/s, and the precision it ran in."""
    command = [sys.executable, "-m", "simclr_lab", "bench", "--size", str(size)]
    command += ["--steps", str(steps), "--precision", precision]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    bench = _json_line(result.stdout, "BENCH_JSON ")
    return bench["images_per_s"], bench["precision"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference", type=Path, default=Path(__file__).with_name("reference_recipe.py")
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["float32", "auto"],
        help="ours in each (auto: bfloat16 where this machine has it natively)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/side_by_side.json"))
    args = parser.parse_args()
    have_reference = args.reference.is_file()
    if not have_reference:
        print(f"{args.reference} not found: measuring simclr-lab alone.")
    results = {size: [] for size in args.sizes}
    for round_ in range(1, args.rounds + 1):
        for size in args.sizes:
            row = {"round": round_, "ours": {}, "ratio": {}}
            if have_reference:
                row["reference"] = reference_images_per_s(args.reference, size)
            for asked in args.precisions:
                speed, precision = ours_images_per_s(size, 10 if size == 32 else 4, asked)
                row["ours"][precision] = speed
                if have_reference:
                    row["ratio"][precision] = speed / row["reference"]
            results[size].append(row)
            line = f"round {round_}, {size}x{size}: "
            if have_reference:
                line += f"reference {row['reference']:.0f} images/s; "
            line += "; ".join(
                f"ours {precision} {speed:.0f}"
                + (f" (ratio {row['ratio'][precision]:.2f})" if have_reference else "")
                for precision, speed in row["ours"].items()
            )
            print(line, flush=True)
    for size, rows in results.items():
        if have_reference:
            for precision in rows[0]["ratio"]:
                median = statistics.median(r["ratio"][precision] for r in rows)
                print(
                    f"{size}x{size}, ours in {precision}: median ratio ours / reference = "
                    f"{median:.2f} over {len(rows)} rounds"
                )
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
