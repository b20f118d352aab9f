#!/usr/bin/env python3
"""healthcheck_sessions: keeps the WhatsApp sessions of a self-hosted gateway connected.

Run it from cron every 15 minutes, from the folder beside the panel's ``.env``::

    */15 * * * * /path/to/panel/.venv/bin/python /path/to/panel/healthcheck_sessions.py

(the venv's Python: cron's python3 usually lacks requests and python-dotenv).

Each run lists the gateway's channels (``GET /api/channels``) and, for every channel whose
status is not ``connected``, calls ``GET /api/channels/<id>/qr``: on a disconnected session
that call makes WPPConnect try to reconnect from its stored login. A session whose client is
not running is relaunched with ``POST /api/channels/<id>/start-session``. Nothing is ever
deleted or recreated: that would throw the login away. The same run serves WAHA, Evolution
API v2 and WPPConnect-Server (HEALTHCHECK_GATEWAY), each through its own non-destructive revive.

Files written (beside this script unless the settings say otherwise):
    logs/healthcheck-sessions.log   one line per event, only in runs with something to say
    logs/healthcheck-sessions.lock  keeps two runs from kicking the same sessions at once
    logs/healthcheck-state.json     incidents across runs, alerts waiting to be resent, and
                                    the last run's result (what --status repeats)
    logs/healthcheck-state.json.lock  keeps two configurations off one state file
All are mode 0600 and never written through a symlink; HEALTHCHECK_METRICS_FILE, if set,
is 0644 for node_exporter. Modes are set on the open file, never by name.

A channel that stays down, a QR that a person must scan, or a gateway that keeps failing is
sent to a person (webhook, e-mail, command); a healthchecks.io-style ping notices when cron
stops running the script at all. With an activity source (a database the panel or the gateway
already fills with inbound messages), a channel that says "connected" but has stopped receiving
is reported too: connected is not alive.

Nagios, Icinga or Monit run ``--status``: it repeats the last cron run's result from the state
file, making no gateway call and writing nothing, and is CRITICAL when cron stopped running.

Exit status (the monitoring-plugin convention, so Nagios/Icinga/Zabbix can run it too):
    0 OK        every channel connected; prints nothing unless --verbose
    1 WARNING   a channel was not connected and every reconnect kick was accepted, or a
                connected channel has gone silent (no inbound message for too long)
    2 CRITICAL  the gateway failed (unreachable, timeout, non-2xx), a kick failed, a QR was issued
    3 UNKNOWN   bad settings, an answer outside the contract, another run in progress, the
                activity source failed

The code is in the healthcheck package beside this file (docs/development.md draws it).
Homepage: the project's README. License: MIT.
"""

import sys

from healthcheck.constants import __version__  # noqa: F401  (read by packagers and -V)
from healthcheck.entry import run

if __name__ == "__main__":
    sys.exit(run())
