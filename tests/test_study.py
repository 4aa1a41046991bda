"""The study of the knobs: points checked before training, rows appended and loaded, plotted."""

import json
from pathlib import Path

import pytest

from simclr_lab.faces.cli import main
from simclr_lab.figures import study_plots
from simclr_lab.runs.presets import get_preset
from simclr_lab.studies import study


def _row(knob, value, seed, **metrics):
    base = {m: 0.5 for m in study.METRICS}
    return {"knob": knob, "value": value, "seed": seed, "epochs": 3, **base, **metrics}


@pytest.mark.parametrize(
    "text, message",
    [
        ("heat=0.5", "Unknown study point 'heat=0.5'; expected KNOB=VALUE"),
        ("temperature", "Unknown study point 'temperature'"),
        ("temperature=warm", "temperature='warm' is not a number"),
        ("temperature=0", "temperature=0 is out of range; allowed: (0, 10]"),
        ("min_area=1.5", "min_area=1.5 is out of range; allowed: (0, 1]"),
        ("colour=2", "colour=2 is out of range; allowed: [0, 1.66667]"),
        ("grayscale=nan", "grayscale=nan is out of range"),
    ],
)
def test_bad_points_are_named_with_what_is_allowed(text, message):
    with pytest.raises(study.StudyError) as error:
        study.parse_point(text)
    assert message in str(error.value)


def test_points_move_one_knob_of_the_preset():
    cpu = get_preset("cpu")
    assert study.point_changes(cpu, "colour", 0.5) == {
        "pretrain.augment.brightness": 0.3,
        "pretrain.augment.jitter": 0.1,
    }
    config = study.study_config("min_area", 1.0, seed=2)
    assert config.pretrain.augment.min_area == 1.0 and config.data.evaluate_on == "validation"
    assert (config.seed, config.data.seed) == (2, 44)
    assert config.pretrain.temperature == cpu.pretrain.temperature  # the other knobs stay
    assert len(study.grid()) == sum(len(v) for v in study.KNOBS.values())
    with pytest.raises(study.StudyError, match="seed=-1"):
        study.check_seed(-1)


def test_rows_load_with_their_source_summarise_and_plot(tmp_path):
    shipped, own = tmp_path / "shipped.jsonl", tmp_path / "own.jsonl"
    for row in (
        _row("temperature", 0.1, 0, val_c_acc=0.8, knn_10=0.2),
        _row("temperature", 0.1, 1, val_c_acc=0.6, knn_10=0.4),
        _row("temperature", 0.5, 0, val_c_acc=0.3),
    ):
        study.append(row, shipped)
    study.append(_row("temperature", 0.5, 0, val_c_acc=0.35), own)
    rows = study.load(shipped, own)
    assert [r["source"] for r in rows] == ["shipped"] * 3 + ["yours"]
    summary = study.summarise(rows)
    point = next(e for e in summary if e["source"] == "shipped" and e["value"] == 0.1)
    assert point["seeds"] == 2 and point["val_c_acc"] == pytest.approx(0.7)
    assert (point["knn_10_min"], point["knn_10_max"]) == (0.2, 0.4)
    assert "| shipped | temperature | 0.1 | 2 | 50.0% [50.0, 50.0] | 70.0% [60.0, 80.0] |" in (
        study.study_table(summary)
    )
    fig = study_plots.plot_study(summary, ("temperature",))
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "held-out images" in labels and "held-out images (yours)" in labels
    with pytest.raises(ValueError, match="no study rows for \\['colour'\\]"):
        study_plots.plot_study(summary, ("colour",))


def test_lab_rows_put_each_temperature_and_crop_point_once_with_the_other_knob_at_the_preset():
    def row(knob, value, seed, knn, seconds, source="shipped"):
        extra = {"preset": "cpu", "machine": "CPU A", "seconds": seconds, "source": source}
        return {**_row(knob, value, seed, knn_100=knn), **extra}

    rows = [
        row("temperature", 0.2, 0, 0.30, 100.0),  # the preset's point: in both knobs' rows
        row("min_area", 0.25, 0, 0.30, None),
        row("temperature", 0.2, 1, 0.40, None),
        row("min_area", 0.5, 0, 0.50, 60.0),
        row("colour", 0.5, 0, 0.90, 60.0),  # not a lab knob
        row("temperature", 0.2, 0, 0.60, 30.0, source="yours"),
    ]
    lab = study.lab_rows(rows)
    assert [(r["source"], r["temperature"], r["min_area"], r["seeds"]) for r in lab] == [
        ("shipped", 0.2, 0.25, 2),
        ("shipped", 0.2, 0.5, 1),
        ("yours", 0.2, 0.25, 1),
    ]
    assert lab[0]["knn_acc"] == pytest.approx(0.35) and lab[0]["seconds"] == 100.0
    assert lab[1]["seconds"] == 60.0 and lab[0]["epochs"] == 3


def test_a_damaged_results_line_is_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_row("colour", 1.0, 0)) + "\n{not json\n")
    with pytest.raises(study.StudyError, match="rows.jsonl, line 2: not a JSON row"):
        study.load(path, tmp_path / "none.jsonl")


@pytest.mark.slow
def test_study_point_runs_and_appends_end_to_end(tmp_path, capsys):
    results, cache = tmp_path / "rows.jsonl", tmp_path / "cache"
    argv = ["study", "--preset", "smoke", "--point", "temperature=0.5", "--seed", "1"]
    argv += ["--epochs", "1", "--results", str(results), "--cache-dir", str(cache)]
    assert main(argv) == 0
    assert main(argv) == 0  # the second time from the cache, appended again
    rows = study.read_rows(results)
    assert len(rows) == 2 and rows[0]["knob"] == "temperature" and rows[0]["value"] == 0.5
    assert rows[0]["seconds"] > 0 and rows[1]["seconds"] is None  # trained, then loaded
    assert {k: rows[0][k] == rows[1][k] for k in study.METRICS} == dict.fromkeys(
        study.METRICS, True
    )
    assert rows[0]["evaluated_on"] == "test"  # the synthetic set has no validation split
    assert rows[0]["epochs"] == 1 and rows[0]["label_budgets"] == [10, 96]  # 96 a class here
    assert "| yours | temperature | 0.5 | 1 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--point", "heat=1"], "Unknown study point 'heat=1'"),
        (["--point", "temperature=-1"], "temperature=-1 is out of range"),
        (["--seed", "one"], "--seed 'one' must be an integer >= 0"),
        (["--epochs", "0"], "--epochs '0' must be an integer >= 1"),
    ],
)
def test_cli_study_refuses_bad_input_before_training(tmp_path, capsys, args, message):
    cache = tmp_path / "cache"
    code = main(["study", "--preset", "smoke", "--cache-dir", str(cache), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not cache.exists()


def test_the_pretraining_curve_loads_tabulates_and_plots(tmp_path):
    path = tmp_path / "curve.jsonl"
    baseline = {"model": "baseline", "final_acc": 0.55, "max_acc": 0.56}
    for epochs in (60, 200):
        study.append({**baseline, "supervised_epochs": epochs}, path)
    for epochs, accuracy in ((48, 0.70), (12, 0.65)):
        study.append(
            {
                "model": "pretrained",
                "pretraining_epochs": epochs,
                "supervised_epochs": 60,
                "knn_acc": accuracy / 2,
                "linear_probe_acc": accuracy - 0.1,
                "final_acc": accuracy,
                "max_acc": accuracy + 0.01,
            },
            path,
        )
    rows = study.load_curve(path)
    table = study.curve_table(rows)
    assert "| baseline, 200 epochs |  |  | 55.0% | 56.0% |" in table
    assert "| pretrained 48 epochs, finetuned 60 | 35.0% | 60.0% | 70.0% | 71.0% |" in table
    fig = study_plots.plot_pretraining_curve(rows)
    finetuned = fig.axes[0].get_lines()[0]
    assert list(finetuned.get_xdata()) == [12, 48]  # sorted by epochs
    assert list(finetuned.get_ydata()) == pytest.approx([65.0, 70.0])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "baseline, 200 epochs: 55.0%" in legend
    with pytest.raises(study.StudyError, match="holds no pretraining curve"):
        study.load_curve(tmp_path / "none.jsonl")


def test_the_shipped_study_covers_the_grid_with_two_seeds_on_the_validation_split():
    rows = study.read_rows(study.SHIPPED_RESULTS)
    seeds: dict = {}
    for row in rows:
        assert row["evaluated_on"] == "validation" and row["preset"] == "cpu"
        assert {"machine", "precision", "seconds"} <= set(row) and set(study.METRICS) <= set(row)
        seeds.setdefault((row["knob"], row["value"]), set()).add(row["seed"])
    assert set(seeds) == set(study.grid())
    assert min(len(s) for s in seeds.values()) >= 2
    assert len({row["epochs"] for row in rows}) == 1  # one length for every point


def test_the_shipped_pretraining_curve_has_three_lengths_and_both_baselines():
    rows = study.load_curve()
    lengths = {r["pretraining_epochs"] for r in rows if r["model"] == "pretrained"}
    assert len(lengths) >= 3 and 12 in lengths
    assert {r["supervised_epochs"] for r in rows if r["model"] == "baseline"} == {60, 200}
    assert all(r["evaluated_on"] == "test" for r in rows)


def test_the_presets_point_is_one_figure_under_every_knob():
    """Each knob's line passes through the preset itself: the same runs, so the same figure."""
    summary = study.summarise(study.load(own=Path("/nonexistent/study.jsonl")))
    at_preset = [e for e in summary if e["value"] == study.preset_value(e["knob"])]
    assert {e["knob"] for e in at_preset} == set(study.KNOBS)
    for metric in study.METRICS:
        assert len({round(e[metric], 9) for e in at_preset}) == 1, metric
    assert len({e["seeds"] for e in at_preset}) == 1


def test_pooling_adds_the_preset_runs_of_other_knobs_once_per_seed():
    rows = [
        _row("temperature", 0.2, 0, knn_100=0.3),
        _row("temperature", 0.2, 2, knn_100=0.5),
        _row("batch_size", 525, 0, knn_100=0.3, top1=0.1),
        _row("batch_size", 128, 0, knn_100=0.4, top1=0.2),
    ]
    pooled = study.pool_preset_point(rows)
    batch = sorted((r["seed"], r["value"]) for r in pooled if r["knob"] == "batch_size")
    assert batch == [(0, 128), (0, 525), (2, 525)]
    seed_0 = [r for r in pooled if r["knob"] == "temperature" and r["seed"] == 0]
    assert len(seed_0) == 1 and seed_0[0]["top1"] == 0.1  # the same run's ranking, kept


def test_the_batch_table_ranks_the_pretext_task_and_counts_the_steps():
    rows = [
        _row(
            "batch_size", value, seed, top1=t, top5=t * 2, mean_rank=r, knn_100=0.3, probe_100=0.4
        )
        for value, t, r in ((128, 0.2, 20.0), (1050, 0.05, 60.0))
        for seed in (0, 1)
    ]
    table = study.batch_table(rows).splitlines()
    assert table[2].startswith("| 128 | 582 | 2 | 20.0% | 40.0% | 20.0 |")
    assert table[3].startswith("| 1,050 | 58 | 2 | 5.0% | 10.0% | 60.0 |")
