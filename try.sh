#!/bin/sh
# Installs what healthcheck_sessions.py needs into .venv and runs it once: against the gateway
# configured in .env (or the environment) when there is one, else against the bundled simulator.
# Then prints the cron line (the venv's Python: cron's python3 lacks the packages): for this folder
# when it has a .env, else (after building the one-file healthcheck_sessions.pyz) for the panel's
# folder it is to be copied to.
set -e
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
status=0
if [ -n "${WPP_GATEWAY_BASE_URL:-}" ] || grep -qs '^ *WPP_GATEWAY_BASE_URL *= *[^ ]' .env; then
    .venv/bin/python healthcheck_sessions.py --verbose "$@" || status=$?
else
    echo "No gateway configured in .env: running against the bundled gateway simulator."
    .venv/bin/python tools/demo.py "$@" || status=$?
fi
here=$(pwd -P)
echo
if [ -f .env ]; then
    echo "To run it every 15 minutes, add this line with crontab -e (in cPanel, Cron Jobs, the same"
    echo "line without the leading */15 * * * *, with the schedule set to every 15 minutes):"
    echo "*/15 * * * * $here/.venv/bin/python $here/healthcheck_sessions.py"
else
    # A cron line for this folder would fail every 15 minutes: it has no .env to read.
    .venv/bin/python tools/build_pyz.py
    echo "This folder has no .env, so no cron line is given for it. To run it for real, copy"
    echo "dist/healthcheck_sessions.pyz and requirements.txt next to the panel's .env (PANEL"
    echo "below), give it a venv there:"
    echo "    cd PANEL && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
    echo "then add this line with crontab -e (in cPanel, Cron Jobs, the same line without the"
    echo "leading */15 * * * *, with the schedule set to every 15 minutes):"
    echo "*/15 * * * * PANEL/.venv/bin/python PANEL/healthcheck_sessions.pyz"
fi
exit $status
