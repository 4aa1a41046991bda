#!/usr/bin/env bash
# Installs what simclr-lab needs on a Debian/Ubuntu machine: Debian's packages (when we may
# use apt-get) and the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Fashion-MNIST for the lessons, Chromium for the browser tests.
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "Not installed: ${missing[*]} ('sudo apt-get install ${missing[*]}')." \
         "Without Fashion-MNIST Keras downloads it on first use; without Chromium the" \
         "browser tests fail." >&2
  fi
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
