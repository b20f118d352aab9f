#!/bin/sh
# Installs the test dependencies into a virtual environment and runs the whole test suite.
# PYTHON picks the interpreter (default python3), VENV the environment's folder (default .venv).
set -e
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
exec "$VENV/bin/python" -m pytest -q tests "$@"
