"""Ship a preset's pretrained encoder inside the package (`simclr_lab/shipped/`).

    python benchmarks/ship_encoders.py --preset cpu
    python benchmarks/ship_encoders.py --preset cpu --set pretrain.epochs=48

The pretraining is the project's own (`train.pretrain`: loaded from the local cache when it
ran before, trained otherwise); the shipped copy holds its weights without optimizer state,
its cache key, history and checksums, and `about.json`: where it ran, in which precision, how
long (when trained now, or `--seconds`), and its frozen features' kNN and linear-probe
accuracy measured in float32, so a learner's machine can check them (tests/test_shipped.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simclr_lab  # noqa: E402  (first: quiet TensorFlow start-up)
from simclr_lab import devices, evaluate, shipped, train  # noqa: E402
from simclr_lab.cli import _parse_setting  # noqa: E402
from simclr_lab.data import load_splits  # noqa: E402


def float32_frozen_scores(result, config, splits) -> dict:
    """kNN and linear probe of the encoder's weights computed in float32 (any machine)."""
    as_float32 = config.replace(**{"model.precision": "float32"})
    model = train.build_contrastive_model(as_float32, splits)
    model.set_weights(result.model.get_weights())
    return evaluate.frozen_scores(model.encoder, splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--seconds", type=float, default=None, help="training time, if cached")
    args = parser.parse_args()
    changes = dict(_parse_setting(text) for text in args.set)
    config = simclr_lab.get_preset(args.preset, **changes).replace(use_shipped=False)
    splits = load_splits(config.data)
    start = time.perf_counter()
    result = train.pretrain(config, splits, verbose=2)
    seconds = None if result.from_cache else time.perf_counter() - start
    about = {
        "preset": config.name,
        "changes": changes,
        "epochs": config.pretrain.epochs,
        "precision": config.model.precision,
        "machine": devices.cpu_name() if not devices.gpu_names() else devices.describe(),
        "software": devices.describe(),
        "seconds": seconds or args.seconds,
        "data": splits.summary(),
        "frozen_float32": float32_frozen_scores(result, config, splits),
        "shipped_on": time.strftime("%Y-%m-%d"),
    }
    settings = json.loads((result.run_dir / "settings.json").read_text())
    folder = shipped.ship(result.model, settings, result.history, about)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(json.dumps(about, indent=2))
    print(f"Shipped {folder} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
