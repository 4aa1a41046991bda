#!/usr/bin/env bash
# A learner's setup: simclr-lab with TensorFlow for CPUs and what the lessons need
# (JupyterLab, widgets; on a GPU machine use the gpu extra instead of cpu), and
# Fashion-MNIST from Debian's package when apt-get may be used (else Keras downloads it on
# first use). Needs no root, no browser and none of the test tools (scripts/install_tests.sh).
# An argument adds extras to the same install: `bash scripts/install.sh test,docs`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
  else
    echo "Fashion-MNIST is not installed here; Keras downloads it on first use" \
         "(or: sudo apt-get install dataset-fashion-mnist)." >&2
  fi
fi
extras="cpu,notebook${1:+,$1}"
python3 -m pip install -q --disable-pip-version-check -e ".[$extras]"
