"""The course as a website: the lessons rendered from their stored outputs (never executed
again), the guide pages, the measurements and an API reference from the docstrings. The
source is the repository itself (`-c docs`), so every link between lessons, guide pages and
measurements is the link GitHub follows:

    python3 -m sphinx -W --keep-going -c docs -b html . docs/_build/html
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))  # mathml.py

project = "simclr-lab"
author = "the simclr-lab authors"
copyright = "the simclr-lab authors, Apache-2.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "mathml",
]
html_math_renderer = "mathml"  # formulas drawn by the browser, no script fetched
root_doc = "docs/index"
include_patterns = ["docs/*.md", "notebooks/*.ipynb", "benchmarks/*.md"]
exclude_patterns = ["docs/_build", "**/.ipynb_checkpoints"]
# docs/redirect/index.html: the site's own index.html opens docs/index.html
html_extra_path = ["redirect"]
html_theme = "furo"
html_title = "simclr-lab"

nb_execution_mode = "off"  # the stored outputs of a real cpu-preset run, as committed
nb_output_stderr = "remove"  # TensorFlow's start-up lines are no part of a lesson
# A widget shows as the static picture it left (no kernel behind a web page), and the page
# loads no widget script from elsewhere.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

default_role = "literal"  # `name` in a docstring is code, as on GitHub
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # Keras' own docstrings are no part of this reference
