#!/usr/bin/env bash
# The test setup: the learner's setup (scripts/install.sh), then the test and website tools
# (pytest, nbval, JAX, ruff, Playwright, Sphinx) and Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh test,docs  # the learner's setup and the test tools, in one install
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "Chromium is not installed ('sudo apt-get install chromium'): the browser tests" \
         "need it." >&2
  fi
fi
