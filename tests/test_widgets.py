import base64

import keras
import numpy as np
import pytest

from simclr_lab.faces.dashboard import LiveDashboard
from simclr_lab.faces.widgets import AugmentationExplorer, SettingsLab, TemperatureExplorer


def test_augmentation_explorer_redraws_on_slider_change(smoke_splits):
    explorer = AugmentationExplorer(smoke_splits.test_images[:3], views=2)
    assert explorer.views.shape == (3, 2, 32, 32, 3)
    before, drawn = explorer.views.copy(), explorer.redraws
    explorer.min_area.value = 1.0
    explorer.brightness.value = 0.0
    explorer.jitter.value = 0.0
    assert explorer.redraws == drawn + 3
    # min_area 1 and no colour change leave only the flip: each view is the image or its mirror.
    image = smoke_splits.test_images[0] / 255.0
    for view in explorer.views[0]:
        assert np.allclose(view, image, atol=1e-5) or np.allclose(view, image[:, ::-1], atol=1e-5)
    assert not np.allclose(before, explorer.views)


def test_augmentation_explorer_resample_and_recipe(smoke_splits):
    explorer = AugmentationExplorer(smoke_splits.test_images[:2])
    before = explorer.views.copy()
    explorer.resample.click()
    assert not np.allclose(before, explorer.views)
    explorer.recipe.value = "paper"
    assert explorer.views.shape[1] == 4


def _shown_png(output) -> bytes:
    """The one image an explorer's Output widget holds, set through its `outputs` state."""
    (shown,) = output.outputs
    assert shown["output_type"] == "display_data"
    png = base64.b64decode(shown["data"]["image/png"])
    assert png.startswith(b"\x89PNG")
    return png


def test_explorers_show_their_figure_as_output_state(smoke_splits):
    # Set as state, not captured from display messages: a headless notebook client mirrors
    # captured messages back to the kernel mid-cell, which stalled lesson 1 on one core.
    explorer = AugmentationExplorer(smoke_splits.test_images[:2], views=2)
    first = _shown_png(explorer.output)
    explorer.min_area.value = 1.0
    assert _shown_png(explorer.output) != first
    rng = np.random.default_rng(0)
    temperature = TemperatureExplorer(rng.normal(size=(8, 4)), rng.normal(size=(8, 4)))
    first = _shown_png(temperature.output)
    temperature.temperature.value = 1.0
    assert _shown_png(temperature.output) != first


def test_temperature_explorer_shows_loss_that_follows_the_slider():
    rng = np.random.default_rng(0)
    p1 = rng.normal(size=(16, 8))
    p2 = p1 + 0.3 * rng.normal(size=(16, 8))
    explorer = TemperatureExplorer(p1, p2, temperature=0.1)
    low = explorer.summary["loss"]
    explorer.temperature.value = 10.0
    assert explorer.summary["temperature"] == pytest.approx(10.0)
    assert explorer.summary["loss"] != pytest.approx(low)
    # At a high temperature the softmax is nearly uniform: the loss nears log N.
    assert explorer.summary["loss"] == pytest.approx(np.log(16), abs=0.1)
    assert "loss <b>" in explorer.label.value


def test_temperature_explorer_rejects_mismatched_projections():
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(5, 3\)"):
        TemperatureExplorer(np.ones((4, 3)), np.ones((5, 3)))


def test_dashboard_records_frames_and_stops_on_request(smoke_config, smoke_splits):
    from simclr_lab.runs.train import build_contrastive_model, pretraining_plan
    from simclr_lab.sources.batching import PairedStream

    plan = pretraining_plan(smoke_config, smoke_splits)
    model = build_contrastive_model(smoke_config, smoke_splits, plan.steps)
    s = smoke_splits
    stream = PairedStream(s.unlabelled, s.labelled_images, s.labelled_labels, plan, epochs=3)
    dashboard = LiveDashboard("pretraining", batch_size=128, update_every=2, show=False)

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            dashboard._request_stop()

    model.fit(
        stream,
        epochs=3,
        steps_per_epoch=plan.steps,
        shuffle=False,
        verbose=0,
        callbacks=[dashboard, StopAfterFirstEpoch()],
    )
    assert len(dashboard.history["c_loss"]) == 2  # stopped during epoch 2, not after 3
    assert dashboard.frames >= 4
    assert all(row["images_per_s"] > 0 for row in dashboard.rows)
    # Training metrics are drawn per step (a one-epoch run is a curve, not one dot).
    positions = [x for x, _ in dashboard.step_history["c_loss"]]
    assert len(positions) == plan.steps + 1  # epoch 1, and the step of epoch 2 it stopped at
    assert positions[plan.steps - 1] == 1.0 and np.all(np.diff(positions) > 0)
    lines = {line.get_label(): line for line in dashboard._draw().axes[0].get_lines()}
    assert len(lines["c_loss (per step)"].get_xdata()) == len(positions)


def test_dashboard_eta_counts_only_the_epochs_a_resumed_run_trains(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[backup])
    dashboard = LiveDashboard("supervised", batch_size=8, update_every=100, show=False)
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[dashboard, backup])
    assert [row["epoch"] for row in dashboard.rows] == [3, 4]  # resumed after epoch 2
    # After epoch 3, one of the two epochs this run trains: as much time left as spent.
    assert dashboard.rows[0]["eta_s"] == pytest.approx(dashboard.rows[0]["elapsed_s"])
    assert dashboard.rows[1]["eta_s"] == 0
    assert np.isnan(dashboard.rows[0]["val_accuracy"])  # fit without validation data


def test_dashboard_status_shows_the_validation_accuracy():
    dashboard = LiveDashboard("pretraining", show=False)
    dashboard.set_params({"epochs": 2, "steps": 3})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)
    assert np.isnan(dashboard.status()["val_accuracy"])
    dashboard.on_epoch_end(0, {"c_loss": 4.0, "val_p_acc": 0.25, "val_p_loss": 2.0})
    row = dashboard.rows[-1]
    assert row["val_accuracy"] == 0.25
    assert "held-out accuracy 25.0%" in dashboard._status_html(row)


def test_dashboard_rejects_unknown_phase():
    with pytest.raises(ValueError, match="'finetune'"):
        LiveDashboard("finetune")


def test_settings_lab_run_from_a_cell_captures_nothing_into_its_output(smoke_splits, monkeypatch):
    from simclr_lab.encoder import get_encoder
    from simclr_lab.faces import widget_output
    from simclr_lab.faces import widgets as lab_widgets

    for module in (lab_widgets, widget_output):  # the lab's and its output's own checks
        monkeypatch.setattr(module, "running_a_cell", lambda: True)
    lab = SettingsLab(lambda temperature, min_area: get_encoder(16, 32), smoke_splits)
    lab.live.outputs = ({"output_type": "stream", "name": "stdout", "text": "last run\n"},)
    monkeypatch.setattr(type(lab.live), "__enter__", lambda self: pytest.fail("captured"))
    lab.run()
    lab.live.clear_output()
    assert lab.live.outputs == () and len(lab.results) == 1


def test_settings_lab_accumulates_rows(smoke_splits):
    from simclr_lab.encoder import get_encoder

    calls = []

    def train_fn(temperature, min_area):
        calls.append((temperature, min_area))
        return get_encoder(16, 32)

    lab = SettingsLab(train_fn, smoke_splits)
    lab.button.click()
    lab.temperature.value = 0.5
    lab.button.click()
    assert [round(c[0], 3) for c in calls] == [0.1, 0.5]
    assert len(lab.results) == 2 and lab.table.value.count("<tr>") == 3
    assert 0 <= lab.results[0]["knn_acc"] <= 1
    # A saved notebook keeps the table for viewers without widget state (GitHub, Colab).
    bundle = lab._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"] == lab.table.value
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")  # GitHub shows this
    assert lab.table.value.count("<td><b>") == 8 * len(lab.results)  # yours, in bold
    assert lab.results[0]["source"] == "yours" and lab.results[0]["seconds"] > 0


def test_settings_lab_starts_with_the_study_and_puts_your_runs_beside_it(smoke_splits):
    from simclr_lab.encoder import get_encoder

    measured = {
        "source": "shipped",
        "temperature": 0.2,
        "min_area": 0.25,
        "epochs": 4,
        "seeds": 2,
        "knn_acc": 0.3,
        "linear_probe_acc": 0.47,
        "seconds": None,
        "machine": "CPU A",
    }
    lab = SettingsLab(lambda t, a: get_encoder(16, 32), smoke_splits, epochs=1, study=[measured])
    assert "<td>study</td>" in lab.table.value and "<td>47.0%</td>" in lab.table.value
    assert "<td>4 epochs, 2 seeds</td>" in lab.table.value and "<td>n/a</td>" in lab.table.value
    lab.run()
    rows = lab._rows()
    assert [r[0] for r in rows] == ["study", "yours"] and rows[1][3] == "1 epoch"
    assert rows[1][6].endswith(" s") and rows[1][7]  # your machine's time and name


def test_explorers_leave_a_static_picture_of_their_last_state(smoke_splits):
    explorer = AugmentationExplorer(smoke_splits.test_images[:2], views=2)
    explorer.min_area.value = 1.0
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # live in JupyterLab
    assert bundle["image/png"] == explorer.output.outputs[-1]["data"]["image/png"]  # last draw
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")


def test_displaying_an_explorer_saves_its_picture_with_ipywidgets_7_or_8(smoke_splits):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() as in a kernel, through IPython's formatters
    explorer = AugmentationExplorer(smoke_splits.test_images[:2], views=2)
    with capture_output() as shown:
        display(explorer)
    saved = shown.outputs[-1].data
    assert "application/vnd.jupyter.widget-view+json" in saved  # live in JupyterLab
    assert base64.b64decode(saved["image/png"]).startswith(b"\x89PNG")  # GitHub shows this


def test_settings_lab_says_cached_for_a_run_it_did_not_train(smoke_splits):
    from types import SimpleNamespace

    from simclr_lab.encoder import get_encoder

    def loaded(temperature, min_area):  # what train.pretrain returns for a cached run
        return SimpleNamespace(model=SimpleNamespace(encoder=get_encoder(16, 32)), from_cache=True)

    lab = SettingsLab(loaded, smoke_splits)
    lab.run()
    assert lab.results[0]["seconds"] is None and lab._rows()[0][6] == "cached"


def test_the_dashboards_stop_button_leaves_html_for_static_viewers():
    import ipywidgets

    from simclr_lab.faces.dashboard import stop_button

    button = stop_button(ipywidgets)
    bundle = button._repr_mimebundle_()
    assert "Stop training" in bundle["text/html"] and "<button disabled>" in bundle["text/html"]
    clicked = []
    button.on_click(lambda _: clicked.append(True))
    button.click()
    assert clicked == [True]  # still a live button
