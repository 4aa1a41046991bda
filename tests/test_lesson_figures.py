"""A lesson says only what its outputs show: every percentage or ratio its prose quotes must
stand in its own stored outputs or in the shipped results (benchmarks/*.md)."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHIPPED = "\n".join(path.read_text() for path in sorted((ROOT / "benchmarks").glob("*.md")))
FIGURE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:%|x\b)")
# Settings a lesson quotes from a recipe (not results of a run), by lesson.
RECIPE_SETTINGS = {
    "01_augmentations.ipynb": {"80%", "20%"},  # the SimCLR paper's jitter and greyscale rates
}


def stored_text(notebook: dict) -> str:
    """Every text a notebook's stored outputs hold (streams, plain text, HTML, Markdown)."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for mime in ("text/plain", "text/html", "text/markdown"):
                parts.append("".join(output.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def prose_figures(notebook: dict) -> list[str]:
    """The percentages and ratios ("52.1%", "15.6x") quoted in the Markdown cells."""
    prose = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    return [figure for text in prose for figure in FIGURE.findall(text)]


def test_figures_are_found_in_text():
    notebook = {"cells": [{"cell_type": "markdown", "source": ["kNN 34.3% and 1.5x, not 3x3"]}]}
    assert prose_figures(notebook) == ["34.3%", "1.5x"]


def test_a_figure_is_not_found_inside_another():
    assert shows("52%", "probe 52%") and not shows("2%", "probe 52%")
    assert not shows("1.5x", "11.5x") and shows("1.5x", "(1.5x)")


def shows(figure: str, text: str) -> bool:
    """Whether `text` holds `figure` whole, not as the tail of a longer number."""
    return re.search(rf"(?<![\d.]){re.escape(figure)}", text) is not None


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_figure_in_prose_is_in_the_stored_outputs_or_shipped_results(path):
    notebook = json.loads(path.read_text())
    sources = stored_text(notebook) + "\n" + SHIPPED
    allowed = RECIPE_SETTINGS.get(path.name, set())
    missing = [
        figure
        for figure in prose_figures(notebook)
        if figure not in allowed and not shows(figure, sources)
    ]
    assert missing == [], f"{path.name} quotes figures that no stored output shows: {missing}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_nbval_compares_at_least_two_outputs_of_every_lesson(path):
    """Cells marked # NBVAL_CHECK_OUTPUT: nbval compares their outputs on every run, so a
    lesson whose library changed under it fails instead of keeping stale outputs."""
    cells = json.loads(path.read_text())["cells"]
    checked = [
        c
        for c in cells
        if c["cell_type"] == "code" and "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT")
    ]
    assert len(checked) >= 2 and all(c.get("outputs") for c in checked)


def test_every_widget_output_leaves_a_picture_or_html():
    """What GitHub and Colab show of a widget: its saved picture or HTML, never only text."""
    widget = "application/vnd.jupyter.widget-view+json"
    for path in LESSONS:
        for cell in json.loads(path.read_text())["cells"]:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if widget in data:
                    static = {"image/png", "text/html"} & set(data)
                    assert static, f"{path.name}: a widget saved as text only"
