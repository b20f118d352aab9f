#!/bin/sh
# Installs what healthcheck_sessions.py needs into .venv and runs it once: against the gateway
# configured in .env (or the environment) when there is one, else against the bundled simulator.
# Then prints the cron line for this folder (the venv's Python: cron's python3 lacks the packages).
set -e
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
status=0
if [ -n "${WPP_GATEWAY_BASE_URL:-}" ] || grep -qs '^ *WPP_GATEWAY_BASE_URL *= *[^ ]' .env; then
    .venv/bin/python healthcheck_sessions.py --verbose "$@" || status=$?
else
    echo "No gateway configured in .env: running against the bundled gateway simulator."
    .venv/bin/python tests/demo.py "$@" || status=$?
fi
here=$(pwd -P)
echo
echo "To run it every 15 minutes, add this line with crontab -e (in cPanel, Cron Jobs, the same"
echo "line without the leading */15 * * * *, with the schedule set to every 15 minutes):"
echo "*/15 * * * * $here/.venv/bin/python $here/healthcheck_sessions.py"
exit $status
