"""The course as a website: it builds without a warning, every page is there, every link
between its pages lands on a page, and a widget shows as the picture it left."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
GUIDE = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
MEASUREMENTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.md"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-c", "docs"]
    built = subprocess.run(
        [*command, "-b", "html", ".", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr[-4000:]
    return out


@pytest.mark.slow
def test_every_lesson_guide_page_and_measurement_is_a_page(site):
    assert (site / "index.html").is_file()  # opens docs/index.html
    for folder, names in (("notebooks", LESSONS), ("docs", GUIDE), ("benchmarks", MEASUREMENTS)):
        for name in names:
            page = site / folder / f"{name}.html"
            assert page.is_file(), page
            assert "<h1>" in page.read_text(), page
    assert len(LESSONS) == 9 and {"index", "api", "library", "runs"} <= set(GUIDE)


@pytest.mark.slow
def test_every_link_between_pages_lands(site):
    broken = []
    for page in site.rglob("*.html"):
        for target in re.findall(r'href="([^"#:?]+)(?:#[^"]*)?"', page.read_text()):
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert broken == []


@pytest.mark.slow
def test_a_widget_shows_as_its_picture_and_no_script_is_fetched(site):
    lesson = (site / "notebooks" / "01_augmentations.html").read_text()
    stored = json.loads((ROOT / "notebooks" / "01_augmentations.ipynb").read_text())
    widgets = sum(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for cell in stored["cells"]
        for output in cell.get("outputs", [])
    )
    assert widgets >= 1 and "widget-view+json" not in lesson
    pictures = len(re.findall(r"<img [^>]*src=\"\.\./_images/", lesson))
    figures = sum(
        "image/png" in output.get("data", {})
        for cell in stored["cells"]
        for output in cell.get("outputs", [])
    )
    assert pictures == figures  # every stored picture, the widgets' among them
    assert "unpkg" not in lesson and "jsdelivr" not in lesson
    assert "<math" in lesson  # the colour affine's formula, as MathML


@pytest.mark.slow
def test_the_losses_formulas_are_mathml(site):
    lesson = (site / "notebooks" / "03_contrastive_loss.html").read_text()
    assert lesson.count('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block"') >= 4
    assert "tex-mml" not in lesson and "jsdelivr" not in lesson  # no MathJax fetched


@pytest.mark.slow
def test_the_api_reference_documents_the_recipe_and_the_machinery(site):
    api = (site / "docs" / "api.html").read_text()
    for name in ("simclr_lab.model.ContrastiveModel", "simclr_lab.loss", "runs.train.pretrain"):
        assert name in api, name
