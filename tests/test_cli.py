import json
import os
import shutil
import subprocess
import sys

import pytest

from simclr_lab.faces.cli import main
from simclr_lab.runs.devices import resolve_precision
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources.data import load_splits


@pytest.mark.slow
def test_compare_smoke_end_to_end(smoke_comparison, tmp_path, capsys):
    out, printed = smoke_comparison.out, smoke_comparison.printed
    assert "| supervised baseline |" in printed and "| pretraining + finetuning |" in printed
    assert "| simclr encoder |" in printed and "| raw pixels |" in printed
    assert printed.count("Maximal test accuracy: ") == 3
    assert printed.count("(trained here in ") == 3
    metrics = smoke_comparison.metrics
    assert set(metrics["phases"]) == {"baseline", "pretraining", "finetuning"}
    for phase in metrics["phases"].values():
        assert 0.0 <= phase["max_val_accuracy"] <= 1.0
    assert set(metrics["frozen_features"]) == {"simclr encoder", "random encoder", "raw pixels"}
    assert (out / "comparison.png").stat().st_size > 10_000
    assert (out / "table.md").read_text().startswith("| run |")
    # A second run loads every phase from the cache.
    assert main(smoke_comparison.arguments(tmp_path / "again", smoke_comparison.cache)) == 0
    assert capsys.readouterr().out.count("(from the cache: ") == 3


def test_set_overrides_reach_the_config(tmp_path, capsys):
    code = main(
        [
            "compare",
            "--preset",
            "smoke",
            "--set",
            "pretrain.temperature=-1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "temperature=-1" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "simclr_lab", "compare", "--preset", "gpu-huge"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("simclr-lab: error: Unknown preset")
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "simclr_lab", "--debug", "compare", "--preset", "gpu-huge"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_info_lists_backend_and_sources(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "backend" in printed and "synthetic" in printed and "fashion_mnist" in printed
    from simclr_lab import __version__

    assert printed.startswith(f"simclr-lab {__version__}: ")  # what is installed


def test_bench_times_every_part_and_prints_one_json_line(capsys):
    args = ["bench", "--size", "32", "--batch", "41", "--steps", "1", "--warmup", "1"]
    assert main([*args, "--precision", "auto"]) == 0
    printed = capsys.readouterr().out
    assert "whole training step" in printed and "matmul peak" in printed
    result = json.loads(printed.split("BENCH_JSON ", 1)[1])
    assert result["precision"] == resolve_precision("auto")  # decided for this machine
    assert result["batch_size"] == 41 and result["image_size"] == 32
    assert len(result["seconds"]) == 4 and all(s > 0 for s in result["seconds"].values())
    step = result["seconds"]["whole training step"]
    assert result["images_per_s"] == pytest.approx(41 / step)
    assert result["matmul_peak_gflops"] > 1 and result["achieved_gflops"] > 0
    assert result["compute_dtype"] in ("float32", "bfloat16")
    assert result["backend_matmul_peak_gflops"] > 1


def test_bench_refuses_an_unknown_precision_before_timing(capsys):
    assert main(["bench", "--precision", "fp8"]) == 2
    error = capsys.readouterr().err
    assert "'fp8'" in error and "mixed_bfloat16" in error


@pytest.mark.slow
def test_sweep_smoke_end_to_end(smoke_comparison, tmp_path, capsys):
    shutil.copytree(smoke_comparison.cache, tmp_path / "cache")  # its pretraining, trained
    code = main(
        [
            "sweep",
            "--preset",
            "smoke",
            "--out",
            str(tmp_path / "sweep"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--labels-per-class",
            "1",
            "5",
            "--seeds",
            "2",
            "--supervised-labels-per-class",
            "1",
            "5",
            "--supervised-seeds",
            "2",
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert len(result["rows"]) == 2 * 2 * 3  # budgets x seeds x feature sets
    assert {e["features"] for e in result["summary"]} == {
        "simclr encoder",
        "random encoder",
        "raw pixels",
    }
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "| raw pixels | 5 |" in printed and "| supervised baseline | 5 |" in printed
    assert "| SimCLR, then finetuned | 1 |" in printed
    # two models x two budgets x two draws, the first draw the comparison's own (data.seed)
    runs = result["supervised_rows"]
    assert len(runs) == 2 * 2 * 2
    assert sorted({r["seed"] for r in runs}) == [42, 43]
    assert {(e["model"], e["per_class"], e["seeds"]) for e in result["supervised"]} == {
        (m, n, 2) for m in ("supervised baseline", "SimCLR, then finetuned") for n in (1, 5)
    }
    # every budget trains the same steps: one pass over the preset's own labels an epoch
    steps = result["supervised_steps"]
    smoke = get_preset("smoke")
    assert steps["steps_per_epoch"] == len(load_splits(smoke.data).labelled_labels) // 32
    assert all(0 <= r["final_acc"] <= 1 for r in runs)


def test_sweep_refuses_too_many_labels_before_training(tmp_path, capsys):
    code = main(
        [
            "sweep",
            "--preset",
            "smoke",
            "--out",
            str(tmp_path / "s"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--labels-per-class",
            "100000",
        ]
    )
    assert code == 2
    assert "[100000]" in capsys.readouterr().err
    assert not list((tmp_path / "cache").glob("pretraining-*"))


@pytest.mark.slow
def test_same_preset_and_seed_give_the_same_numbers(smoke_comparison, tmp_path):
    assert main(smoke_comparison.arguments(tmp_path / "second", tmp_path / "cache")) == 0
    first = smoke_comparison.metrics
    second = json.loads((tmp_path / "second" / "metrics.json").read_text())
    for phase in first["phases"]:
        a, b = first["phases"][phase]["history"], second["phases"][phase]["history"]
        assert {k: [f"{v:.4f}" for v in vs] for k, vs in a.items()} == {
            k: [f"{v:.4f}" for v in vs] for k, vs in b.items()
        }
    assert first["frozen_features"] == second["frozen_features"]


def test_help_is_quick_and_loads_no_keras():
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    shown = subprocess.run(
        [sys.executable, "-m", "simclr_lab", "--help"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0 and "compare" in shown.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in shown.stderr.splitlines()]
    assert "simclr_lab.faces.arguments" in imported
    assert not [m for m in imported if m.split(".")[0] in ("keras", "tensorflow", "jax")]


@pytest.mark.parametrize("command", ["compare", "pretrain", "sweep", "study", "bench", "info"])
def test_every_subcommand_has_an_example_and_shows_its_defaults(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = capsys.readouterr().out
    assert f"example:\n  simclr-lab {command}" in shown and "(default:" in shown


def test_version(capsys):
    from simclr_lab import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"simclr-lab {__version__}"


@pytest.mark.slow
def test_a_comparison_on_jax_trains_every_phase_without_tensorflow(one_epoch_comparisons):
    jax = one_epoch_comparisons["jax"]
    assert "asked for tensorflow: [] status: 0" in jax.printed
    metrics = json.loads((jax.folder / "out" / "metrics.json").read_text())
    history = metrics["phases"]["pretraining"]["history"]
    assert all(k in history for k in ("c_loss", "c_acc", "p_loss", "p_acc", "val_c_acc"))
    assert 0.0 < metrics["phases"]["finetuning"]["max_val_accuracy"] <= 1.0


@pytest.mark.slow
def test_a_comparison_on_jax_peaks_within_a_tenth_of_tensorflows(one_epoch_comparisons):
    peaks = {backend: one_epoch_comparisons[backend].peak for backend in ("tensorflow", "jax")}
    print(f"peak KiB: {peaks}; JAX / TensorFlow: {peaks['jax'] / peaks['tensorflow']:.3f}")
    assert peaks["jax"] <= 1.1 * peaks["tensorflow"], peaks
