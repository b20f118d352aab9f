#!/bin/sh
# Installs the test dependencies into a virtual environment and runs the whole test suite.
# PYTHON picks the interpreter (default python3), VENV the environment's folder (default .venv).
# The activity tests use real MariaDB and PostgreSQL servers from Debian's packages, the
# systemd units are checked with systemd-analyze and the Prometheus rules with promtool (Debian's
# prometheus package): as root, this installs them when they are missing (elsewhere those tests
# are skipped, except on CI, where they fail).
set -e
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if ! command -v mariadbd >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1 ||
            ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        echo "--- installing mariadb-server, postgresql and systemd (Debian packages) for the tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server postgresql \
            systemd >/dev/null
    fi
    if ! command -v promtool >/dev/null 2>&1; then
        echo "--- installing prometheus (Debian package, for promtool) for the tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            prometheus >/dev/null
    fi
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
exec "$VENV/bin/python" -m pytest -q tests "$@"
