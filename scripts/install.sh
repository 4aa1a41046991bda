#!/usr/bin/env bash
# Installs what simclr-lab needs on a Debian/Ubuntu machine: Fashion-MNIST from Debian's
# package (when we may use apt-get) and the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
  else
    echo "Fashion-MNIST is not installed: 'sudo apt-get install dataset-fashion-mnist'," \
         "or let Keras download it on first use." >&2
  fi
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
