#!/usr/bin/env bash
# Creates .venv with the pinned environment (pyproject.toml + infra/constraints.txt).
# Safe to run again: it reinstalls only when either file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "error: Python 3.11 is required (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.installed
wanted=$(cat pyproject.toml infra/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing the pinned environment into .venv (first time: a few minutes)..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c infra/constraints.txt -e ".[dev]"
    echo "$wanted" > "$stamp"
fi
