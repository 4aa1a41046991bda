#!/usr/bin/env bash
# The declared minimum versions, tested: a fresh virtual environment holding exactly the
# floors of pyproject.toml (Keras, TensorFlow, NumPy, ipywidgets 7 and the rest), then the
# quick tests and lesson 8's export in it. Run by .ci/run; needs Python 3.11 (pyenv or PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.11.*/bin/python3.11 2>/dev/null | head -1)
python=${python:-$(command -v python3.11)}
venv=${FLOORS_VENV:-/tmp/simclr-lab-floors}
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "keras==3.9.0" "tensorflow-cpu==2.16.1" "numpy==1.26.4" "ipywidgets==7.8.5" \
  "matplotlib==3.7.5" "scikit-learn==1.3.2" "tensorflow-datasets==4.9.4" "pillow==10.0.1" \
  "tensorflow-metadata==1.15.0" "jupyter-ui-poll==1.0.0" \
  pytest pytest-xdist nbclient "ipykernel>=6.29,<7"
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e .
"$venv/bin/python" -c "import keras, numpy, ipywidgets, tensorflow as tf; print('floors:', \
  'keras', keras.__version__, 'tensorflow', tf.__version__, 'numpy', numpy.__version__, \
  'ipywidgets', ipywidgets.__version__)"
# Everything quick but what needs the test tools themselves (ruff, Sphinx, JAX).
SIMCLR_LAB_PRESET=smoke "$venv/bin/python" -m pytest -q -p no:cacheprovider -n auto --dist loadgroup \
  -m "not slow and not browser and not binder" tests \
  --ignore=tests/test_style.py --ignore=tests/test_site.py --ignore=tests/test_distribute.py \
  -k "not jax"
SIMCLR_LAB_PRESET=smoke "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_folder.py \
  -k "plain_keras_loads or export_computes or exported_model"
