#!/usr/bin/env bash
# Set up spear for development on a fresh CPU machine: bubblewrap (the code
# interpreter's sandbox) and chromium (the inspector's browser test) when apt is
# available, a virtualenv in .venv, the CPU
# build of PyTorch and the package with its dev extras.
# GPU users: see README ("Install on a GPU machine").
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install COMMAND PACKAGE WHY: install PACKAGE with apt-get (as root) when COMMAND is missing
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }) \
      || echo "warning: could not install $2; $3" >&2
  else
    echo "warning: $1 not found; install it (apt-get install $2): $3" >&2
  fi
}
apt_install bwrap bubblewrap "without it the code sandbox falls back to rlimits only"
# the headless browser that tests/trainer/test_inspect.py opens `spear inspect`'s page in
apt_install chromium chromium "without it the inspector's browser test is skipped"

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch==2.13.0 first: on these machines it is a local CPU wheel; an unpinned
# torch would pull the newest CUDA build (several GB).
.venv/bin/pip install -q torch==2.13.0
# constraints.txt: the numeric stack the shipped policies were built with (their manifests
# record it), so a rebuild and the tests see the same versions
.venv/bin/pip install -q -c constraints.txt -e ".[dev]"
