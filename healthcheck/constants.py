"""Fixed values: monitoring states, defaults, limits, the --help text of the settings."""

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

__version__ = "1.2.0"


#: Monitoring-plugin states; the exit status is the worst one seen.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

PROGRAM = "healthcheck_sessions"
#: The folder of the command that was run (healthcheck_sessions.py or its .pyz build): the
#: .env and logs/ live beside it, never inside the package or the archive.
def entry_folder() -> Path:
    """The folder of the command that was run: beside it are the .env and logs/."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return Path.cwd()
    where = Path(path).resolve()
    # In a zipapp __main__ is <archive>.pyz/__main__.py: the folder that holds the archive counts.
    while not where.is_dir():
        where = where.parent
    if where == Path(sys.prefix).resolve() / "bin":  # pip's console script: the current folder
        return Path.cwd()
    return where


SCRIPT_DIR = entry_folder()
DEFAULT_ENV_FILE = SCRIPT_DIR / ".env"
DEFAULT_LOG_FILE = Path("logs") / "healthcheck-sessions.log"

#: Timeouts in seconds. The list is slow: the wrapper asks WPPConnect for each session in turn.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LIST_TIMEOUT = 90.0
DEFAULT_QR_TIMEOUT = 30.0
#: A run never lasts longer than this, whatever the gateway does; cron starts the next one at 15 min.
DEFAULT_DEADLINE = 600.0
#: Part of the deadline kept back from gateway calls for the alerts, pings, state and log.
DEADLINE_RESERVE_FRACTION = 0.25
DEADLINE_RESERVE_MAX = 60.0
#: At most this many reconnect calls at once: each can start a browser on the gateway.
DEFAULT_WORKERS = 4

#: After the revive calls, wait this long and list again to see which sessions came back.
DEFAULT_VERIFY_SECONDS = 30.0
#: Per-channel series in the metrics file; the rest are counted in the totals.
DEFAULT_METRICS_MAX_CHANNELS = 5000
#: Listed entries handled between two looks at the clock (a listing may hold 200,000).
DEADLINE_CHECK_EVERY = 1000
#: `--status`: a last run older than this means cron stopped running the script (two missed
#: 15-minute runs and a margin for a run that takes its whole deadline).
DEFAULT_STATUS_MAX_AGE_MINUTES = 35.0
#: `--status` repeats this many of the last run's detail lines (Nagios long output).
MAX_STATUS_DETAIL_LINES = 20
#: A channel (or the gateway) down this many runs in a row reaches a person: ~30 min at */15.
DEFAULT_ALERT_AFTER = 2
#: While an incident lasts, a reminder goes out this often.
DEFAULT_ALERT_REPEAT_HOURS = 6.0
#: Seconds for each alert delivery and each dead-man ping.
DEFAULT_ALERT_TIMEOUT = 10.0
#: Ping retries: a ping is cheap and its absence raises an alarm elsewhere.
PING_RETRIES = 2
#: Each dead-man ping (all its tries) gets this share of the deadline, at most PING_SLICE_MAX s:
#: a ping server that accepts and never answers must not use up the run.
PING_SLICE_FRACTION = 0.2
PING_SLICE_MAX = 30.0
#: Failed alerts kept for the next run, at most; the oldest go first (and are logged).
MAX_PENDING_ALERTS = 50
STATE_VERSION = 1

#: A revive that shows a QR starts a browser on the gateway (~1.35 GB under WPPConnect) and only
#: a scan can finish it: after a QR, revive again on runs 2, 4, 8, 16... of the incident, then
#: this often.
DEFAULT_QR_RETRY_HOURS = 6.0
#: A session that is starting or reconnecting is left to the gateway's own recovery this long.
DEFAULT_STARTING_GRACE_MINUTES = 10.0
#: A channel whose drops were each repaired is flapping after this many within FLAP_WINDOW:
#: one alert, a reminder at most once a FLAP_WINDOW while it goes on, resolved after a
#: FLAP_WINDOW without a drop.
DEFAULT_FLAP_DROPS = 4
FLAP_WINDOW = timedelta(hours=24)

#: A connected channel with no inbound message for this long is silent, whatever its history.
DEFAULT_SILENT_HOURS = 72.0
#: ...and earlier, from its own history, once the silence is at least this old.
DEFAULT_SILENT_MIN_MINUTES = 60.0
#: Messages the channel would normally have received during the silence: P(none | 7) = e^-7,
#: under 1 in 1,000, so a silence that long is not chance.
SILENT_EXPECTED_MESSAGES = 7.0
#: History needed before the channel's own rhythm is trusted, and how far back it is kept.
ACTIVITY_MIN_HISTORY_SECONDS = 7 * 86400
ACTIVITY_WINDOW_SECONDS = 28 * 86400
#: Messages counted per channel and hour: beyond it, a channel is busy enough for any rule.
MAX_HOURLY_COUNT = 999_999
HOURS_PER_WEEK = 168
DEFAULT_ACTIVITY_TIMEOUT = 30.0
#: A writer's clock may run a little fast; a row dated further ahead of ours is not counted
#: until its time comes, so that it can neither become the reading mark nor hide later rows.
ACTIVITY_AHEAD_TOLERANCE = 5 * 60
#: Further ahead than any zone mix-up can put a row (UTC-12 read as UTC+14): a bogus time.
ACTIVITY_MAX_AHEAD = 26 * 3600
#: The last instant every zone can still show as a date: later times cannot be kept.
MAX_EPOCH = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()
#: The longest repeated stretch a clock change has made (most are one hour).
MAX_REPEAT_SECONDS = 3 * 3600
#: Channel names longer than this are not channels: their rows are ignored, never stored.
MAX_CHANNEL_ID_CHARS = 200
#: Where MariaDB and MySQL put their socket (Debian, then others): what PHP's mysqli finds
#: for DB_HOST=localhost when DB_SOCKET is not set.
MYSQL_SOCKET_PATHS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock",
                      "/tmp/mysql.sock")
#: The panel's own table of inbound webhooks (HEALTHCHECK_ACTIVITY_DB=panel, MySQL/MariaDB).
PANEL_ACTIVITY_QUERY = (
    "SELECT COALESCE(JSON_UNQUOTE(JSON_EXTRACT(payload_json, '$.session.id')), "
    "JSON_UNQUOTE(JSON_EXTRACT(payload_json, '$.sessionId')), "
    "JSON_UNQUOTE(JSON_EXTRACT(payload_json, '$.session.session'))) AS channel, "
    "received_at FROM webhook_raw_logs "
    "WHERE received_at > :since AND event_type IN ('message', 'onmessage')")

#: The most of a state file that is read; save_state keeps the file below it.
MAX_STATE_BYTES = 4 * 1024 * 1024
#: Room kept under MAX_STATE_BYTES when the activity history is cut to fit.
STATE_SLACK_BYTES = 64 * 1024
#: State files set aside as unreadable that are kept for a look; older ones are removed.
MAX_ASIDE_FILES = 3
#: An answer larger than this is refused unread: no gateway list comes near it.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: Lines per run, at most, for channels and for problems: a hostile list cannot flood the log.
#: With the notes and the traceback, a run writes at most about 600 log lines.
MAX_CHANNEL_LINES = 480
MAX_PROBLEM_LINES = 40
MAX_NOTE_LINES = 40
MAX_TRACEBACK_LINES = 30
#: Channels whose incidents are kept across runs, at most (the state stays under 1 MB).
MAX_INCIDENTS = 1000
#: One alert message, and all the undelivered ones together, at most (JSON bytes).
MAX_ALERT_BYTES = 64 * 1024
MAX_PENDING_BYTES = 256 * 1024
#: Alert items described one per line; the rest are counted.
MAX_ALERT_ITEMS = 60
#: What is quoted from a gateway's answer is cut to this many characters.
MAX_QUOTE_CHARS = 200
#: The status line a monitoring system shows, without its performance data (Monit keeps 512
#: bytes of the whole output; the plugin guidelines ask for a short first line).
MAX_STATUS_LINE_CHARS = 200

#: The gateways the script talks to, with an example address for each.
GATEWAY_TYPES = {"wrapper": "https://wpp.example.com:8443", "waha": "http://127.0.0.1:3000",
                 "evolution": "http://127.0.0.1:8080", "wppconnect": "http://127.0.0.1:21465"}

#: Fields in which the gateway wrappers return the QR image.
QR_IMAGE_FIELDS = ("qr", "qr_base64", "qrcode", "base64Qrimg", "base64", "base64Image",
                   "image", "qrcode_base64")
#: `/qr` statuses that mean the session is up (no scan needed).
CONNECTED_QR_STATUSES = frozenset({"connected", "islogged", "inchat", "qrreadsuccess"})
#: `/qr` statuses that mean the session is still launching.
STARTING_QR_STATUSES = frozenset({"initializing", "starting", "opening", "connecting", "pairing"})
#: Wrapper statuses of a session on its way up: the words the WPPConnect states behind the
#: wrapper produce while a session launches or resyncs (server INITIALIZING, the page's
#: OPENING/PAIRING, the stream's CONNECTING/SYNCING/RESUMING, the library's launch steps). They
#: get the starting grace; anything else that is not `connected` is revived at once.
WRAPPER_TRANSIENT_STATUSES = STARTING_QR_STATUSES | frozenset({
    "syncing", "resuming", "initbrowser", "openbrowser", "initwhatsapp", "waitchat"})

#: Outcomes of a revive call (and of the plan's waits), and the state each one stands for.
OUTCOME_STATES = {
    "reconnect_requested": WARNING,   # accepted, no QR: WPPConnect reconnects from the stored login
    "already_connected": WARNING,     # the list was stale; the session answered as connected
    "starting": WARNING,              # the session is still launching
    "start_session_requested": WARNING,  # the client was not running and was relaunched
    "would_reconnect": WARNING,       # --dry-run: computed as if the revive were accepted
    "qr_issued": CRITICAL,            # the stored login is gone: a person must scan a QR
    "qr_pending": CRITICAL,           # a QR waits for a scan; not kicked this run (backoff)
    "in_grace": WARNING,              # starting or reconnecting: left to the gateway's recovery
    "stuck": CRITICAL,                # still starting past its grace, and no safe revive
    "silent": WARNING,                # listed as connected, but no inbound message for too long
    "failed": CRITICAL,               # the revive call itself failed
    "ignored": OK,                    # HEALTHCHECK_IGNORE_CHANNELS: never revived nor alerted
    "unknown": CRITICAL,              # its status read failed: not judged, its incident kept
    "restart_gateway": CRITICAL,      # only restarting the gateway's process can load it
    "restart_pending": CRITICAL,      # the same, not called again this run (backoff)
    "not_called": CRITICAL,           # due, but no time was left in the deadline: no call made
}


def in_venv() -> bool:
    """True when the running Python is a venv's (its pip installs into that venv)."""
    return sys.prefix != sys.base_prefix


def install_hint(requirements: str) -> str:
    """Return the command that installs `requirements` for the script, a venv's pip first.

    Debian 12, Ubuntu 23.04 and later refuse a system-wide `pip install` (PEP 668): outside a
    venv, the way that works everywhere is a venv beside the script, run by cron.
    """
    if in_venv():  # install into it
        return f"{sys.executable} -m pip install {requirements}"
    return (f"cd {SCRIPT_DIR} && python3 -m venv .venv && .venv/bin/pip install {requirements}"
            f", then run the script with {SCRIPT_DIR}/.venv/bin/python")


#: What a CLOSED session that its own start did not bring back needs.
WPPCONNECT_LOGIN_GONE = ("its stored login is gone (the phone unlinked the device, or a QR "
                         "went unscanned for 60 s and WPPConnect closed it, which reads the "
                         "same as stopped): a person must scan a new QR (qrcode-session) with "
                         "the WhatsApp of that number within 60 s of a start")

#: Outcomes that mean a reconnect call was made.
REVIVE_OUTCOMES = frozenset({"reconnect_requested", "already_connected", "starting",
                             "start_session_requested", "qr_issued", "failed", "restart_gateway"})
#: Revive outcomes after which only a person can go on: later revives back off as for a QR.
PERSON_OUTCOMES = frozenset({"qr_issued", "restart_gateway"})

#: The gateway's own incident is kept under this key, beside the channels'; and the activity
#: source's. Channel ids are strings of any characters, so no string is safe from a channel named
#: after it: these keys are not strings. The state file keeps them in a section of their own.
GATEWAY_KEY = ("watchdog", "gateway")
ACTIVITY_KEY = ("watchdog", "activity")
#: Their names in the state file's "watchdog_incidents" section.
WATCHDOG_INCIDENTS = {"gateway": GATEWAY_KEY, "activity": ACTIVITY_KEY}
#: Where a state file written before that section existed kept them, among the channels.
LEGACY_WATCHDOG_KEYS = {"*gateway*": GATEWAY_KEY, "*activity*": ACTIVITY_KEY}
