"""What more pretraining buys: frozen and finetuned accuracy against pretraining epochs.

    python benchmarks/pretraining_curve.py                      # 6, 12, 24, 48 epochs
    python benchmarks/pretraining_curve.py --epochs 6 12 48

For each length the `cpu` preset pretrains once (its own cosine schedule over that many
epochs: each point is a whole run, not a checkpoint of a longer one; from the cache, or the
shipped encoders of 12 and 48 epochs), then measures the frozen encoder (kNN and linear
probe) and finetunes it with the preset's 60 supervised epochs. The baseline is the preset's
own (60 epochs) and one trained as long as it keeps improving (--baseline-epochs, 200:
benchmarks/fair_baseline.py found it levelling off between 92 and 197). Everything scores
on the test split, as lesson 6's comparison does. The rows are written to
`simclr_lab/shipped/pretraining_curve.jsonl` (package data: lesson 6 draws them with
`study_plots.plot_pretraining_curve`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simclr_lab  # noqa: E402  (first: quiet TensorFlow start-up)
from simclr_lab import evaluate  # noqa: E402
from simclr_lab.runs import shipped, train  # noqa: E402
from simclr_lab.runs.devices import describe, machine_name  # noqa: E402
from simclr_lab.sources.data import load_splits  # noqa: E402
from simclr_lab.studies import study  # noqa: E402


def save(rows: list[dict], path: Path) -> None:
    """Write every row so far (a long run stopped midway keeps its finished points)."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    if path == study.CURVE_RESULTS:  # the package's own: its checksum follows
        shipped.seal_results()
    print(rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[6, 12, 24, 48])
    parser.add_argument("--baseline-epochs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=study.CURVE_RESULTS)
    args = parser.parse_args()
    config = simclr_lab.get_preset("cpu")
    splits = load_splits(config.data)
    where = {
        "precision": config.model.precision,
        "machine": machine_name(),
        "software": describe(),
        "evaluated_on": config.data.evaluate_on,
    }
    rows = []
    for epochs in (config.supervised.epochs, args.baseline_epochs):
        longer = config.replace(**{"supervised.epochs": epochs})
        baseline = train.train_baseline(longer, splits, verbose=0)
        rows.append(
            {
                "model": "baseline",
                "supervised_epochs": epochs,
                "final_acc": baseline.final_val_accuracy,
                "max_acc": baseline.max_val_accuracy,
                "source": train.provenance(baseline),
                **where,
            }
        )
        save(rows, args.out)
    for epochs in sorted(args.epochs):
        start = time.perf_counter()
        run = config.replace(**{"pretrain.epochs": epochs})
        pretrained = train.pretrain(run, splits, verbose=0)
        frozen = evaluate.frozen_scores(pretrained.model.encoder, splits)
        finetuned = train.finetune(run, splits, pretrained, verbose=0)
        rows.append(
            {
                "model": "pretrained",
                "pretraining_epochs": epochs,
                "supervised_epochs": config.supervised.epochs,
                "knn_acc": frozen["knn_acc"],
                "linear_probe_acc": frozen["linear_probe_acc"],
                "final_acc": finetuned.final_val_accuracy,
                "max_acc": finetuned.max_val_accuracy,
                "pretraining_source": train.provenance(pretrained),
                "finetuning_source": train.provenance(finetuned),
                "seconds": time.perf_counter() - start,
                **where,
            }
        )
        save(rows, args.out)
    print(f"\n{study.curve_table(rows)}\n\nWrote {args.out}")


if __name__ == "__main__":
    main()
