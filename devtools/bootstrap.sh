#!/usr/bin/env bash
# Print a command that runs uv, installing uv from PyPI first if this machine has none.
# uv must use the local Python (UV_PYTHON_DOWNLOADS=never): it may not download toolchains.
set -euo pipefail
if command -v uv >/dev/null 2>&1; then command -v uv; exit 0; fi
PY=${PYTHON:-python3}
if ! "$PY" -m uv --version >/dev/null 2>&1; then
  echo "installing uv with pip..." >&2
  "$PY" -m pip install --quiet uv >&2 2>/dev/null \
    || "$PY" -m pip install --quiet --user uv >&2 2>/dev/null \
    || "$PY" -m pip install --quiet --user --break-system-packages uv >&2
fi
echo "$PY -m uv"
