#!/bin/sh
# Installs what healthcheck_sessions.py needs into .venv and runs it once: against the gateway
# configured in .env (or the environment) when there is one, else against the bundled simulator.
set -e
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
if [ -n "${WPP_GATEWAY_BASE_URL:-}" ] || grep -qs '^ *WPP_GATEWAY_BASE_URL *= *[^ ]' .env; then
    exec .venv/bin/python healthcheck_sessions.py --verbose "$@"
fi
echo "No gateway configured in .env: running against the bundled gateway simulator."
exec .venv/bin/python tests/demo.py "$@"
