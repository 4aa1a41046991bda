from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from simclr_lab.figures import plots, study_plots


def test_training_curves_one_panel_per_metric():
    histories = {
        "baseline": {"val_acc": [0.1, 0.2], "val_loss": [2, 1]},
        "pretraining": {"val_p_acc": [0.1, 0.3], "val_p_loss": [2, 1.5]},
    }
    fig = plots.plot_training_curves(histories)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 2


def test_training_curves_pick_keys_by_history_not_by_run_name():
    # A pretraining run under another name is still drawn through its online probe.
    histories = {
        "simclr, 8 epochs": {"val_p_acc": [0.1, 0.3], "val_p_loss": [2, 1.5], "c_loss": [5, 4]},
        "finetuned": {"val_acc": [0.2, 0.4], "val_loss": [2, 1]},
    }
    fig = plots.plot_training_curves(histories)
    for ax in fig.axes:
        assert [line.get_label() for line in ax.lines] == list(histories)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [10, 30])
    with pytest.raises(ValueError, match=r"no val_p_acc or val_acc; it has \['c_loss'\]"):
        plots.plot_training_curves({"contrastive only": {"c_loss": [5, 4]}})


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_map(method):
    rng = np.random.default_rng(0)
    fig = plots.plot_embedding(rng.normal(size=(40, 5)), np.arange(40) % 4, method=method)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert len(fig.axes[0].collections) == 4  # one scatter per class
    assert "variance" in fig.axes[0].get_xlabel() or "t-SNE" in fig.axes[0].get_xlabel()


def test_embedding_map_shaded_by_a_second_value():
    rng = np.random.default_rng(0)
    brightness = rng.uniform(size=40)
    fig = plots.plot_embedding(
        rng.normal(size=(40, 5)), np.arange(40) % 4, shade=("brightness", brightness)
    )
    shaded = fig.axes[1].collections[0]
    np.testing.assert_allclose(shaded.get_array(), brightness)  # one dot per image, its value
    assert "brightness" in fig.axes[1].get_title()


def test_retrieval_grid_shape():
    images = np.random.default_rng(0).integers(0, 255, (12, 8, 8, 3)).astype("uint8")
    encoders = {"pixels": lambda x: x.reshape(len(x), -1).astype("float32") + 1}
    fig = plots.plot_retrieval(images, images, encoders, queries=3, k=4)
    assert len(fig.axes) == 3 * 5
    assert fig.axes[0].get_title(loc="left") == "pixels: query"
    assert [fig.axes[j].get_title() for j in range(1, 5)] == [
        f"neighbour {j}" for j in range(1, 5)
    ]
    with pytest.raises(ValueError, match="k=13"):
        plots.plot_retrieval(images, images, encoders, k=13)


def test_similarity_heatmap_and_bad_input():
    fig = plots.plot_similarity_matrix(np.eye(5))
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        plots.plot_similarity_matrix(np.ones((2, 3)))


def test_show_images_and_history():
    images = np.zeros((3, 8, 8, 3), "uint8")
    fig = plots.show_images({"a": images, "b": images / 255.0}, columns=4)
    assert len(fig.axes) == 2 * 4
    fig = plots.plot_history({"c_loss": [3, 2], "c_acc": [0.1, 0.2]})
    assert [ax.get_title() for ax in fig.axes] == ["c_loss", "c_acc"]
    with pytest.raises(ValueError, match="p_acc"):
        plots.plot_history({"c_loss": [1]}, keys=["p_acc"])


def test_label_sweep_plot():
    summary = [
        {
            "features": name,
            "per_class": n,
            "knn_acc": 0.5,
            "knn_acc_min": 0.4,
            "knn_acc_max": 0.6,
            "linear_probe_acc": 0.6,
            "linear_probe_acc_min": 0.5,
            "linear_probe_acc_max": 0.7,
        }
        for name in ("simclr encoder", "raw pixels")
        for n in (1, 10)
    ]
    supervised = [
        {"model": m, "per_class": n, "final_acc": 0.6, "final_acc_min": 0.5, "final_acc_max": 0.7}
        for m in ("supervised baseline", "SimCLR, then finetuned")
        for n in (1, 10)
    ]
    fig = study_plots.plot_label_sweep(summary, supervised)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert len(fig.axes[0].lines) == 2  # frozen features only: no supervised curve on kNN
    assert len(fig.axes[1].containers) == 2  # the two supervised curves' error bars
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "SimCLR, then finetuned (trained end to end)" in labels


def test_pretraining_gains_bars_and_annotations():
    settings = [
        {"setting": "plain", "baseline": 0.81, "pretrained": 0.82},
        {
            "setting": "composite",
            "baseline": 0.50,
            "pretrained": 0.58,
            "pretrained_spread": (0.56, 0.60),
        },
    ]
    fig = study_plots.plot_pretraining_gains(settings)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [50.0, 58.0, 81.0, 82.0]
    assert [t.get_text() for t in ax.texts] == ["+1.0", "+8.0"]
    with pytest.raises(ValueError, match="empty"):
        study_plots.plot_pretraining_gains([])


def test_the_pipeline_figure_carries_the_presets_shapes():
    from simclr_lab.figures import pipeline

    figure = pipeline.plot_pipeline(batch=525, labelled=25, image_size=32, width=128)
    texts = " ".join(t.get_text() for t in figure.axes[0].texts)
    assert "1,050 views" in texts and "(1,050, 128)" in texts and "(25, 128) -> (25, 10)" in texts
    assert "stop-gradient" in texts and "NT-Xent" in texts
    small = pipeline.pipeline_shapes(batch=128, labelled=16, image_size=32, width=64, classes=4)
    assert small["projections"] == "projections\n(256, 64)"


def test_the_readme_shows_the_pipeline_figure():
    root = Path(__file__).resolve().parents[1]
    assert "(docs/images/pipeline-cpu.png)" in (root / "README.md").read_text()
    assert (root / "docs" / "images" / "pipeline-cpu.png").stat().st_size > 10_000
