"""Every lesson, run in a real JupyterLab in Chromium on the smoke preset."""

import json
import time

import pytest
from lab_driver import error_outputs, first_output_image, open_notebook, run_all

LESSONS = [
    "01_augmentations.ipynb",
    "02_encoder.ipynb",
    "03_contrastive_loss.ipynb",
    "03b_training_step.ipynb",
    "04_linear_probe.ipynb",
    "05_finetuning.ipynb",
    "06_comparison.ipynb",
    "08_your_own_images.ipynb",
]


def _move_slider(page, index, key, presses):
    handle = page.locator(".widget-hslider .noUi-handle").nth(index)
    handle.click()
    for _ in range(presses):
        handle.press(key)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_without_errors(page, lab, artifacts, name):
    open_notebook(page, lab, name)
    run_all(page)
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=False)
    assert error_outputs(page) == []


def test_min_area_slider_changes_the_augmented_images(page, lab, artifacts):
    open_notebook(page, lab, "01_augmentations.ipynb")
    run_all(page)
    page.wait_for_selector(".widget-hslider .noUi-handle")
    page.locator(".widget-hslider").first.scroll_into_view_if_needed()
    before = first_output_image(page, ".widget-output")
    assert before, "the explorer shows its views as an image"
    page.screenshot(path=str(artifacts / "augmentations-before.png"))
    _move_slider(page, 0, "ArrowRight", 5)  # min_area 0.25 -> 0.50
    page.wait_for_function(
        "(old) => { const i = document.querySelector('.widget-output img');"
        " return i && i.src !== old; }",
        arg=before,
        timeout=60_000,
    )
    page.screenshot(path=str(artifacts / "augmentations-after.png"))


def test_temperature_slider_changes_the_shown_loss(page, lab, artifacts):
    open_notebook(page, lab, "03_contrastive_loss.ipynb")
    run_all(page)
    label = page.locator(".widget-html-content:has-text('contrastive accuracy')").last
    before = label.text_content()
    label.scroll_into_view_if_needed()
    _move_slider(page, 0, "ArrowRight", 6)
    page.wait_for_function(
        "(old) => [...document.querySelectorAll('.widget-html-content')]"
        ".some(n => n.textContent.includes('contrastive accuracy') && n.textContent !== old)",
        arg=before,
        timeout=60_000,
    )
    assert label.text_content() != before
    page.screenshot(path=str(artifacts / "temperature-after.png"))


DASHBOARD_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": [
                "from simclr_lab import get_preset\n",
                "from simclr_lab.runs import train\n",
                "from simclr_lab.sources import data\n",
                "from simclr_lab.faces.dashboard import LiveDashboard\n",
                "config = get_preset('smoke', **{'pretrain.epochs': 40})\n",
                "splits = data.load_splits(config.data)\n",
                "board = LiveDashboard('pretraining', batch_size=128, update_every=1)\n",
                "try:\n",
                "    train.pretrain(config, splits, callbacks=[board], verbose=0)\n",
                "finally:\n",
                "    print(f\"EPOCHS RUN: {len(board.history['c_loss'])}\")\n",
            ],
        },
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_dashboard_updates_live_and_stop_ends_training(page, lab, artifacts):
    _, _, root = lab
    (root / "notebooks" / "dashboard_check.ipynb").write_text(json.dumps(DASHBOARD_NOTEBOOK))
    open_notebook(page, lab, "dashboard_check.ipynb")
    page.click("li[role='menuitem']:has-text('Run')")
    page.click("li[role='menuitem']:has-text('Run All Cells')")
    frames, deadline = set(), time.time() + 240
    while len(frames) < 3 and time.time() < deadline:
        src = first_output_image(page, ".jp-OutputArea")
        if src:
            frames.add(src)
        time.sleep(0.3)
    assert len(frames) >= 2, "the dashboard's plot changes while fit runs"
    page.screenshot(path=str(artifacts / "dashboard-live.png"))
    page.click("button:has-text('Stop training')")
    result = page.locator(".jp-OutputArea-output:has-text('EPOCHS RUN:')")
    result.wait_for(timeout=120_000)
    run = int(result.text_content().split("EPOCHS RUN:")[1].split()[0])
    assert run < 40, f"training went on to {run} epochs after Stop"
    page.screenshot(path=str(artifacts / "dashboard-stopped.png"))
