"""The library's shape (README: "How the library is built"), checked on every module.

The top level is the recipe a learner reads; the machinery lives in subpackages beneath it.
Imports at module level and inside functions both count, so a lazy import cannot hide one.
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simclr_lab"

RECIPE = {"augment", "encoder", "loss", "model", "evaluate", "diagnostics"}
RECIPE_LINES = 1500  # the recipe, all six modules together
# The learner's exercises and their checks: beside the recipe, held to its imports.
EXERCISES = {"exercises"}
MODULE_LINES = 400
FUNCTION_LINES = 60  # longer only with a reason in the docstring ("Long because ...")
SUBPACKAGES = {"sources", "runs", "studies", "figures", "faces"}

# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = [
    ("settings", {"config"}),
    ("recipe", RECIPE),
    ("exercises", EXERCISES),
    ("platform", {f"runs.{m}" for m in ("devices", "distribute", "cache", "presets", "shipped")}),
    ("sources", {"sources.*"}),
    ("figures", {"figures.*"}),
    ("training driver", {"runs.callbacks", "runs.phases", "runs.train"}),
    ("studies", {"studies.*"}),
    ("faces", {"faces.*", "__init__", "__main__"}),
]

SCREEN = {"IPython", "ipywidgets", "jupyter_ui_poll"}
NETWORK = {f"simclr_lab.{m}" for m in ("augment", "encoder", "loss", "model")}
HEADLESS = {"simclr_lab.faces", *SCREEN}
# What the recipe may import besides itself and the settings. The offline linear probe
# (`evaluate.linear_probe_accuracy`) is scikit-learn's logistic regression.
RECIPE_MAY_IMPORT = {"keras", "numpy", "__future__", *sys.stdlib_module_names}
RECIPE_EXTRA = {"evaluate": {"sklearn"}}


def module_names() -> list[str]:
    """Every module of the package, dotted from its root: "config", "runs.cache"."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        names.append(".".join(parts))
    return names


def layer_of(module: str) -> int:
    """The index of `module`'s layer in LAYERS; a subpackage's `__init__` (a docstring)
    counts as the top, where nothing is above it."""
    if module.endswith(".__init__"):
        return len(LAYERS) - 1
    for index, (_, members) in enumerate(LAYERS):
        package = module.split(".")[0]
        if module in members or f"{package}.*" in members and "." in module:
            return index
    raise KeyError(module)


def never(module: str) -> set[str]:
    """What `module` never imports, beyond the layers above it (a prefix covers submodules)."""
    if module == "config":
        return {"simclr_lab"}  # settings are leaves
    if module.endswith(".__init__"):
        return {"simclr_lab"}  # a subpackage's map says what lives there, and imports nothing
    if module.startswith("sources."):  # data knows nothing of the network
        return NETWORK | {"keras.models", "keras.Model", "keras.Sequential"}
    if module in ("evaluate", "diagnostics"):  # measures never train and draw nothing
        return {"simclr_lab.runs", "simclr_lab.figures", "matplotlib"}
    if module.startswith("figures."):  # a figure trains nothing
        return {"simclr_lab.runs"} | HEADLESS
    if module in ("runs.callbacks", "runs.phases", "runs.train"):  # the driver knows no screen
        return HEADLESS | {"simclr_lab.figures", "matplotlib"}
    if module.startswith("studies."):  # studies run headless
        return HEADLESS
    return set()


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


def _target(name: str) -> str | None:
    """The package module a dotted name inside simclr_lab lands in ("runs.cache" for
    "simclr_lab.runs.cache.RunDir"); None for the package itself."""
    known = set(module_names())
    parts = name.split(".")[1:]
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
        if candidate in SUBPACKAGES:
            return f"{candidate}.__init__"
    return None


def violations(module: str, source: str) -> list[str]:
    """What `module` imports against the rules, as readable lines."""
    found = set()
    for name in imported_names(source):
        top = name.split(".")[0]
        if top == "simclr_lab":
            target = _target(name)
            if target is not None and not target.endswith(".__init__"):
                if layer_of(target) > layer_of(module):
                    found.add(f"{module} imports {target}, a layer above it")
            if module in RECIPE | EXERCISES and target not in RECIPE | {"config", None}:
                found.add(f"{module} imports {name}: the recipe never imports the machinery")
        elif module in RECIPE | EXERCISES and top not in RECIPE_MAY_IMPORT | RECIPE_EXTRA.get(
            module, set()
        ):
            found.add(f"{module} imports {name}: the recipe imports only Keras and NumPy")
        if _within(name, never(module)):
            found.add(f"{module} imports {name}, which it never may")
        if not module.startswith("faces.") and _within(name, SCREEN):
            found.add(f"{module} imports {name}: only the faces face the user")
    return sorted(found)


def long_functions(source: str) -> list[str]:
    """Functions over FUNCTION_LINES lines whose docstring gives no reason ("Long because")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            reason = "Long because" in (ast.get_docstring(node) or "")
            if length > FUNCTION_LINES and not reason:
                found.append(f"{node.name} ({length} lines)")
    return found


def source_of(module: str) -> str:
    return (PACKAGE / f"{module.replace('.', '/')}.py").read_text()


def test_the_top_level_is_the_recipe_and_a_few_folders():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == RECIPE | EXERCISES | {"config", "__init__", "__main__"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == SUBPACKAGES | {"shipped"}  # shipped: data, no code
    for package in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse(source_of(f"{package}.__init__")))
        assert doc and "May import" in doc, f"{package}/__init__.py says what it may import"


def test_every_module_has_a_layer():
    for module in module_names():
        layer_of(module)  # raises KeyError for a module placed nowhere


@pytest.mark.parametrize("module", module_names())
def test_module_keeps_to_its_layer(module):
    assert violations(module, source_of(module)) == []


def test_no_import_circle():
    graph = {m: set() for m in module_names()}
    for module in graph:
        for name in imported_names(source_of(module)):
            target = _target(name) if name.startswith("simclr_lab.") else None
            if target in graph and target != module and not target.endswith("__init__"):
                graph[module].add(target)
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                raise AssertionError("import circle: " + " -> ".join([*path, target]))
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_sizes():
    recipe = sum(len(source_of(m).splitlines()) for m in RECIPE)
    assert recipe <= RECIPE_LINES, f"the recipe has {recipe} lines"
    too_long = {
        m: n for m in module_names() if (n := len(source_of(m).splitlines())) > MODULE_LINES
    }
    assert too_long == {}, f"modules over {MODULE_LINES} lines"
    functions = {m: f for m in module_names() if (f := long_functions(source_of(m)))}
    assert functions == {}, f"functions over {FUNCTION_LINES} lines without a reason"


@pytest.mark.parametrize(
    "module, source",
    [
        ("runs.train", "from simclr_lab.figures import plots"),
        ("runs.train", "def fit():\n    import matplotlib.pyplot as plt\n"),
        ("evaluate", "from simclr_lab.runs.train import pretrain"),
        ("evaluate", "from matplotlib import pyplot"),
        ("encoder", "from simclr_lab.runs.devices import resolve_precision"),
        ("loss", "import tensorflow as tf"),
        ("model", "from simclr_lab.sources import data"),
        ("sources.data", "from simclr_lab.augment import get_augmenter"),
        ("sources.data", "from keras.models import Sequential"),
        ("studies.sweep", "from IPython.display import display"),
        ("studies.bench", "from simclr_lab.faces.dashboard import LiveDashboard"),
        ("config", "from .runs.devices import gpu_names"),
        ("figures.plots", "from simclr_lab.runs import train"),
        ("augment", "def show():\n    import ipywidgets\n"),
        ("runs.cache", "from simclr_lab.sources.folder import scan_folder"),
    ],
)
def test_the_check_sees_a_broken_rule(module, source):
    assert violations(module, source)


def test_the_check_sees_a_long_function():
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    assert long_functions(f"def f():\n{body}")
    assert not long_functions(f'def f():\n    """Long because: a table."""\n{body}')
