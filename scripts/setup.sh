#!/usr/bin/env bash
# Set up spear for development on a fresh CPU machine: bubblewrap (the code
# interpreter's sandbox) and chromium (the inspector's browser test) when apt is
# available, a virtualenv in .venv, the CPU
# build of PyTorch and the package with its dev extras.
# GPU users: see README ("Install on a GPU machine").
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }) \
      || echo "warning: could not install bubblewrap; the code sandbox falls back to rlimits only" >&2
  else
    echo "warning: bubblewrap not found; install it (apt-get install bubblewrap) for the full code sandbox" >&2
  fi
fi

# chromium: the headless browser tests/trainer/test_inspect.py opens `spear inspect`'s page in
# (the test skips, saying so, without it)
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
      || echo "warning: could not install chromium; the inspector's browser test will be skipped" >&2
  else
    echo "warning: chromium not found; install it (apt-get install chromium) to run the inspector's browser test" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch==2.13.0 first: on these machines it is a local CPU wheel; an unpinned
# torch would pull the newest CUDA build (several GB).
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[dev]"
