"""The library's layers (README: "How the library is built"), checked on every module's imports.

Imports at module level and inside functions both count, so a lazy import cannot hide one.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simclr_lab"

# Bottom to top: a module may import its own layer and the layers below it, never one above.
DATA = {"data", "composite", "synthetic", "batching", "folder"}
STUDIES = {"compare", "sweep", "study", "bench", "own_images"}
FACES = {"cli", "widgets", "dashboard"}  # the only modules that face the user
LAYERS = [
    ("settings", {"config"}),
    ("platform", {"devices", "distribute", "cache", "presets", "shipped"}),
    ("data", DATA),
    ("model", {"augment", "encoder", "loss", "model"}),
    ("measures", {"evaluate", "diagnostics"}),
    ("pictures", {"plots"}),
    ("training driver", {"train", "callbacks"}),
    ("studies", STUDIES),
    ("faces", FACES | {"__init__", "__main__"}),
]
LAYER = {module: level for level, (_, modules) in enumerate(LAYERS) for module in modules}

SCREEN = {"IPython", "ipywidgets", "jupyter_ui_poll"}
NETWORK = {f"simclr_lab.{m}" for m in ("augment", "encoder", "loss", "model")}
HEADLESS = {"simclr_lab.widgets", "simclr_lab.dashboard", *SCREEN}
# What a module never imports, beyond the layers above it (a prefix covers its submodules).
NEVER = {
    "config": {"simclr_lab"},  # settings are leaves: nothing of the package
    **{m: NETWORK | {"keras.models", "keras.Model", "keras.Sequential"} for m in DATA},
    **{  # numbers only
        m: {"simclr_lab.train", "simclr_lab.plots", "matplotlib"}
        for m in ("evaluate", "diagnostics")
    },
    **{  # the driver draws nothing and knows no screen
        m: HEADLESS | {"simclr_lab.plots", "matplotlib"} for m in ("train", "callbacks")
    },
    **{m: HEADLESS for m in STUDIES},  # studies run headless
}


def imported_names(source: str) -> set[str]:
    """Dotted names a module's source imports: `from a.b import c` gives "a.b.c"."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: inside the package
                base = "simclr_lab" + (f".{base}" if base else "")
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(module: str, source: str) -> list[str]:
    """What `module` (a file of simclr_lab/) imports against the layers, as readable lines."""
    found = set()
    for name in imported_names(source):
        parts = name.split(".")
        if parts[0] == "simclr_lab":
            target = parts[1] if len(parts) > 1 else "__init__"
            if LAYER.get(target, -1) > LAYER[module]:
                found.add(f"{module} imports {target}, a layer above it")
        if _within(name, NEVER.get(module, ())):
            found.add(f"{module} imports {name}, which it never may")
        if module not in FACES and _within(name, SCREEN):
            found.add(f"{module} imports {name}: only {sorted(FACES)} face the user")
    return sorted(found)


def test_every_module_has_a_layer():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(LAYER), "place new modules in LAYERS (and README) and drop old ones"


@pytest.mark.parametrize("module", list(LAYER))
def test_module_keeps_to_its_layer(module):
    assert violations(module, (PACKAGE / f"{module}.py").read_text()) == []


@pytest.mark.parametrize(
    "module, source",
    [
        ("train", "from simclr_lab import plots"),
        ("train", "def fit():\n    import matplotlib.pyplot as plt\n"),
        ("evaluate", "from simclr_lab.train import pretrain"),
        ("evaluate", "from matplotlib import pyplot"),
        ("data", "from simclr_lab.augment import get_augmenter"),
        ("data", "from keras.models import Sequential"),
        ("sweep", "from IPython.display import display"),
        ("bench", "from simclr_lab.dashboard import LiveDashboard"),
        ("config", "from .devices import gpu_names"),
        ("plots", "from simclr_lab import train"),
        ("augment", "def show():\n    import ipywidgets\n"),
    ],
)
def test_the_check_sees_a_broken_rule(module, source):
    assert violations(module, source)
