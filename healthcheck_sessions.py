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

Homepage: the project's README. License: MIT.
"""

__version__ = "1.1.0"

import argparse
import dataclasses
import fnmatch
import json
import math
import os
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

try:
    import requests
    from dotenv import dotenv_values
except ImportError as _exc:  # cron's python3 is often not the one the packages went into
    _MISSING_PACKAGE: Optional[str] = _exc.name or "requests"
else:
    _MISSING_PACKAGE = None

###############################################################################
# Constants ###################################################################
###############################################################################

#: Monitoring-plugin states; the exit status is the worst one seen.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

PROGRAM = "healthcheck_sessions"
SCRIPT_DIR = Path(__file__).resolve().parent
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

#: After the kicks, wait this long and list again to see which sessions came back.
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

#: A QR kick starts a browser on the gateway (~1.35 GB under WPPConnect) and only a scan can
#: finish it: after a QR, kick again on runs 2, 4, 8, 16... of the incident, then this often.
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

#: Outcomes of a kick, and the state each one stands for.
OUTCOME_STATES = {
    "reconnect_requested": WARNING,   # accepted, no QR: WPPConnect reconnects from the stored login
    "already_connected": WARNING,     # the list was stale; the session answered as connected
    "starting": WARNING,              # the session is still launching
    "start_session_requested": WARNING,  # the client was not running and was relaunched
    "would_reconnect": WARNING,       # --dry-run: computed as if the kick were accepted
    "qr_issued": CRITICAL,            # the stored login is gone: a person must scan a QR
    "qr_pending": CRITICAL,           # a QR waits for a scan; not kicked this run (backoff)
    "in_grace": WARNING,              # starting or reconnecting: left to the gateway's recovery
    "stuck": CRITICAL,                # still starting past its grace, and no safe revive
    "silent": WARNING,                # listed as connected, but no inbound message for too long
    "failed": CRITICAL,               # the kick itself failed
    "ignored": OK,                    # HEALTHCHECK_IGNORE_CHANNELS: never revived nor alerted
    "unknown": CRITICAL,              # its status read failed: not judged, its incident kept
    "restart_gateway": CRITICAL,      # only restarting the gateway's process can load it
    "restart_pending": CRITICAL,      # the same, not called again this run (backoff)
    "not_called": CRITICAL,           # due, but no time was left in the deadline: no call made
}

ENV_HELP = """\
settings (.env beside the script, or --env-file; the environment wins over the file):
  HEALTHCHECK_GATEWAY          wrapper (default), waha, evolution or wppconnect
  HEALTHCHECK_GATEWAY_URL      the gateway's address (wrapper: WPP_GATEWAY_BASE_URL also works)
  HEALTHCHECK_GATEWAY_KEY      WAHA X-Api-Key, Evolution apikey, WPPConnect SECRET_KEY
  HEALTHCHECK_STARTING_GRACE_MINUTES  a starting session is left alone this long (default 10)
  HEALTHCHECK_SILENT_ACTION    alert (default) or restart: what a silent channel gets
  WPP_GATEWAY_BASE_URL         gateway address, e.g. https://wpp.example.com:8443
  WPP_GATEWAY_SECRET           sent as X-Gateway-Secret; may be the panel's encrypted form
  INFRA_SECRET_KEY             the panel's key, to decrypt an encrypted WPP_GATEWAY_SECRET
  HEALTHCHECK_LOG_FILE         log path (default logs/healthcheck-sessions.log beside the script)
  HEALTHCHECK_CONNECT_TIMEOUT  seconds to connect (default 10)
  HEALTHCHECK_LIST_TIMEOUT     seconds for GET /api/channels (default 90)
  HEALTHCHECK_QR_TIMEOUT       seconds for each reconnect call (default 30)
  HEALTHCHECK_DEADLINE         seconds a whole run may last (default 600)
  HEALTHCHECK_WORKERS          reconnect calls at once (default 4)
  HEALTHCHECK_VERIFY_TLS       true/false: check the gateway's certificate (default true)
  HEALTHCHECK_CA_BUNDLE        a CA file to trust instead of the system's
  HEALTHCHECK_EXPECTED_CHANNELS  comma-separated channels that must be listed
  HEALTHCHECK_IGNORE_CHANNELS  channels (or shell-style patterns: test-*) never revived nor alerted
  HEALTHCHECK_STATE_FILE       incidents across runs (default healthcheck-state.json by the log)
  HEALTHCHECK_VERIFY_SECONDS   wait, then list again to check the kicks (default 30; 0 off)
  HEALTHCHECK_ALERT_AFTER      runs down in a row before a person is told (default 2)
  HEALTHCHECK_ALERT_REPEAT_HOURS  reminder interval while an incident lasts (default 6)
  HEALTHCHECK_ALERT_TIMEOUT    seconds for each alert delivery and ping (default 10)
  HEALTHCHECK_ALERT_WEBHOOK_URL  POST alerts as JSON with a "text" field (Slack, Mattermost...),
                               escaped for the renderer its URL names
  HEALTHCHECK_SMTP_HOST        alerts by e-mail through this SMTP server
  HEALTHCHECK_SMTP_PORT        its port (default 465 with ssl, 587 with starttls, 25 with off)
  HEALTHCHECK_SMTP_USER        login, if the server wants one
  HEALTHCHECK_SMTP_PASSWORD    password for that login
  HEALTHCHECK_SMTP_FROM        sender address
  HEALTHCHECK_SMTP_TO          comma-separated recipients
  HEALTHCHECK_SMTP_TLS         starttls, ssl (implicit TLS) or off (default ssl on port 465,
                               else starttls); certificates are always checked
  HEALTHCHECK_SMTP_STARTTLS    older alias: false is HEALTHCHECK_SMTP_TLS=off
  HEALTHCHECK_SMTP_CA_BUNDLE   a CA file that signed the SMTP server's certificate
  HEALTHCHECK_ALERT_COMMAND    a command that gets each alert as JSON on stdin
  HEALTHCHECK_PING_URL         dead man's switch: <url>/start, <url>, <url>/fail
  HEALTHCHECK_METRICS_FILE     Prometheus metrics, rewritten every run (node_exporter textfile)
  HEALTHCHECK_METRICS_MAX_CHANNELS  per-channel series in the metrics file (default 5000)
  HEALTHCHECK_STATUS_MAX_AGE_MINUTES  --status: a last run older than this is CRITICAL (default 35)
  HEALTHCHECK_QR_RETRY_HOURS   after a QR, kick on runs 2, 4, 8... then this often (default 6)
  HEALTHCHECK_FLAP_DROPS       repaired drops within 24 h that make a channel flapping (default 4;
                               0 off): one alert, a daily reminder, resolved after 24 h calm
  HEALTHCHECK_ACTIVITY_DB      database of inbound messages (sqlite:///..., mysql+pymysql://...,
                               postgresql+psycopg://...) or `panel` (the panel's DB_* settings)
  HEALTHCHECK_ACTIVITY_QUERY   SQL returning (channel, received_at) rows after :since
  HEALTHCHECK_ACTIVITY_TZ      zone of naive times in that database (default: this machine's)
  HEALTHCHECK_ACTIVITY_TIMEOUT seconds for the activity query (default 30)
  HEALTHCHECK_SILENT_HOURS     a connected channel silent this long is reported (default 72)
  HEALTHCHECK_SILENT_HOURS_BY_CHANNEL  per channel: imobsites=168,orsegups=off
  HEALTHCHECK_SILENT_MIN_MINUTES  the earliest a busy channel is called silent (default 60)
  DB_HOST DB_PORT DB_NAME DB_USER DB_PASS DB_CHARSET  the panel's database, for `panel`
  DB_SOCKET                    the socket DB_HOST=localhost means (default: the usual paths)

exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
"""

###############################################################################
# Errors ######################################################################
###############################################################################


class HealthcheckError(Exception):
    """An expected failure: its message says what failed and what to check."""

    def __init__(self, message, state=UNKNOWN):
        super().__init__(message)
        self.state = state


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM arrived; like Ctrl-C (SIGINT), it unwinds the run so the lock is released."""


###############################################################################
# Text safety and bounded calls ###############################################
###############################################################################

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
#: Unicode categories replaced in gateway text: control and format characters (U+202E reverses
#: text, U+200B hides in a name), lone surrogates (half an emoji, which no encoder accepts) and
#: line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def clean_text(text: str) -> str:
    """Return gateway text with every character of an unsafe Unicode category as "?"."""
    if text.isascii():
        return _CONTROL_CHARS.sub("?", text)
    import unicodedata
    return "".join("?" if unicodedata.category(char) in UNSAFE_CATEGORIES else char
                   for char in text)


def quote_untrusted(value, limit=MAX_QUOTE_CHARS):
    """Return text from the network as one printable line of bounded length."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (ValueError, TypeError, RecursionError):
            text = f"<{type(value).__name__}>"
    # Redacted before the cut: a cut through an echoed secret would leave a fragment too
    # short for the redaction applied to the output.
    text = _untrusted_redactor(text[:limit * 4])
    cut = len(text) > limit
    text = clean_text(text[:limit])
    return text + "..." if cut else text


#: Shorter secrets are not masked (see Redactor).
MIN_MASKED_SECRET = 4
_REDACTOR_LOCK = threading.Lock()


class Redactor:
    """Removes the secrets from any text before it leaves the process.

    A secret is hidden whole, in its percent-encoded and base64 forms, and any run of
    MIN_LEAK of its characters is hidden too, whatever the case (a gateway may echo a hex
    secret upper-cased).

    A secret that is also a word ("test", "Welcome") must not hide the longer words that hold
    it ("testing" in an error message), so the secret itself is hidden wherever it stands,
    except where it continues a longer word: a letter or digit touches it on a side where it
    has a letter or digit too. A `%XX` escape before it is a separator, not part of a word, so
    `user%3Atest%40host` is hidden as much as `user:test@host`. Its encoded forms and the URLs
    are not words: they are hidden wherever they are, and so are the runs of a secret that holds
    a digit or a symbol (a token); the runs of a secret made of letters only follow the word
    rule, as they may be ordinary words too. A secret of MAX_WORD characters or more is no word:
    it and its runs are hidden wherever they are.
    """

    #: A run of this many characters of a secret counts as leaking it.
    MIN_LEAK = 8
    #: A secret this long is no word (a passphrase, a token): hidden even inside a longer one.
    MAX_WORD = 16

    def __init__(self, secrets: Sequence[str] = (), whole_only: Sequence[str] = ()):
        # A secret of 1 to 3 characters cannot be masked without masking every word that
        # holds those letters; such a password protects nothing anyway.
        secrets = [s for s in secrets if s and len(s) >= MIN_MASKED_SECRET]
        wholes = {s for s in whole_only if s}
        for secret in [s for s in secrets if s]:
            wholes.update(_encoded_forms(secret))
        words = {s for s in secrets if len(s) < self.MAX_WORD}
        wholes.update(s for s in secrets if s not in words)
        wholes.difference_update(words)
        # Longest first, so a secret that contains another is hidden whole.
        self._pattern = _alternatives(wholes)
        self._word_pattern = _alternatives(words)
        self._pieces = set()
        #: Runs of the secrets made of letters only: hidden, except inside a longer word.
        self._word_pieces = set()
        self._added: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= self.MIN_LEAK:
                lowered = secret.lower()
                (self._word_pieces if secret in words and secret.isalpha()
                 else self._pieces).update(
                    lowered[i:i + self.MIN_LEAK]
                                    for i in range(len(lowered) - self.MIN_LEAK + 1))

    def add(self, secret: str) -> None:
        """Hide one more secret from now on (a token minted during the run).

        Cheap, because a run may mint hundreds: the token is replaced as it is, and its runs
        of MIN_LEAK characters join the pieces; the compiled pattern is left as it is.
        """
        if secret and len(secret) >= MIN_MASKED_SECRET:
            with _REDACTOR_LOCK:
                self._added.add(secret)
                lowered = secret.lower()
                self._pieces.update(lowered[i:i + self.MIN_LEAK]
                                    for i in range(len(lowered) - self.MIN_LEAK + 1))

    def __call__(self, text: str) -> str:
        for secret in tuple(self._added):  # a worker thread may be adding one
            text = text.replace(secret, "***")
        if (self._pattern is None and self._word_pattern is None and not self._pieces
                and not self._word_pieces):
            return text
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
        if self._word_pattern is not None:
            text = self._word_pattern.sub(
                lambda m: m.group() if _continues_a_word(m.string, m.start(), m.end())
                else "***", text)
        if not self._pieces and not self._word_pieces:
            return text
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters change length when lower-cased
            lowered = "".join(c.lower()[:1] or c for c in text)
        hidden = self._runs(lowered, self._pieces)
        if self._word_pieces:
            in_words = self._runs(lowered, self._word_pieces)
            start = 0
            while start < len(text):
                if not in_words[start]:
                    start += 1
                    continue
                end = start
                while end < len(text) and in_words[end]:
                    end += 1
                if not _continues_a_word(text, start, end):
                    hidden[start:end] = [True] * (end - start)
                start = end
        if not any(hidden):
            return text
        out, previous = [], False
        for char, is_hidden in zip(text, hidden):
            if is_hidden and not previous:
                out.append("***")
            elif not is_hidden:
                out.append(char)
            previous = is_hidden
        return "".join(out)


    def _runs(self, lowered: str, pieces: set) -> list[bool]:
        """Mark each character of `lowered` that is part of one of `pieces`."""
        marked = [False] * len(lowered)
        if pieces:
            for i in range(len(lowered) - self.MIN_LEAK + 1):
                if lowered[i:i + self.MIN_LEAK] in pieces:
                    marked[i:i + self.MIN_LEAK] = [True] * self.MIN_LEAK
        return marked


def _alternatives(texts: set) -> Optional["re.Pattern[str]"]:
    """Return a pattern matching any of `texts` in any case, longest first; None for none."""
    ordered = sorted((t for t in texts if t), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in ordered), re.IGNORECASE) if ordered \
        else None


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}\Z")


def _continues_a_word(text: str, start: int, end: int) -> bool:
    """True when text[start:end] is part of a longer word (see Redactor)."""
    joined_before = (start > 0 and text[start - 1].isalnum() and text[start].isalnum()
                     and not _PERCENT_ESCAPE.search(text, max(start - 3, 0), start))
    joined_after = end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    return joined_before or joined_after


def _encoded_forms(secret: str) -> list[str]:
    """Return the forms a secret takes in a URL or a base64 blob, to be hidden as well."""
    import base64
    raw = secret.encode("utf-8")
    forms = [quote(secret, safe=""), quote(secret)]
    for shift in range(3):  # base64 of the secret at each alignment within a longer value
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode("ascii")
            # The first block mixes in what came before, the last what comes after.
            middle = encoded[4 if shift else 0:-4]
            if len(middle) >= Redactor.MIN_LEAK:
                forms.append(middle)
    return [f for f in forms if f != secret]


#: Applied to network text as it is quoted; main() sets it once the secrets are known.
_untrusted_redactor = Redactor()


def call_with_timeout(function: Callable[[], object], limit: float):
    """Run `function` on a daemon thread; return its result, or raise TimeoutError after `limit`.

    Socket timeouts bound each read, not a whole exchange: a peer that trickles bytes would
    otherwise hold the run past its deadline.
    """
    box: dict[str, object] = {}

    def target():
        try:
            box["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(max(limit, 0))
    if worker.is_alive():
        raise TimeoutError(f"no answer within {max(limit, 0):.3g}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("result")


###############################################################################
# Settings ####################################################################
###############################################################################


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know, read from .env and the environment."""

    base_url: str
    secret: str = field(repr=False)
    secrets_to_hide: tuple[str, ...] = field(repr=False)
    env_file: Path = DEFAULT_ENV_FILE
    log_file: Path = SCRIPT_DIR / DEFAULT_LOG_FILE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    list_timeout: float = DEFAULT_LIST_TIMEOUT
    qr_timeout: float = DEFAULT_QR_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    workers: int = DEFAULT_WORKERS
    verify_tls: bool = True
    ca_bundle: Optional[Path] = None
    expected_channels: tuple[str, ...] = ()
    #: Names or shell-style patterns (as channel_key), never revived, alerted or missed.
    ignore_channels: tuple[str, ...] = ()
    state_file: Optional[Path] = None
    verify_seconds: float = DEFAULT_VERIFY_SECONDS
    alert_after: int = DEFAULT_ALERT_AFTER
    alert_repeat_hours: float = DEFAULT_ALERT_REPEAT_HOURS
    alert_timeout: float = DEFAULT_ALERT_TIMEOUT
    webhook_url: Optional[str] = field(default=None, repr=False)
    alert_command: Optional[str] = None
    smtp: Optional["SmtpSettings"] = None
    ping_url: Optional[str] = field(default=None, repr=False)
    #: URLs that carry a token of their own: hidden whole, never quoted.
    urls_to_hide: tuple[str, ...] = field(default=(), repr=False)
    #: The settings file holds the secret and others than its owner may read it.
    env_file_exposed: bool = False
    qr_retry_hours: float = DEFAULT_QR_RETRY_HOURS
    flap_drops: int = DEFAULT_FLAP_DROPS
    activity: Optional["ActivitySettings"] = None
    metrics_file: Optional[Path] = None
    #: Which gateway, and the names of the settings that hold its address and key.
    gateway: str = "wrapper"
    url_setting: str = "WPP_GATEWAY_BASE_URL"
    key_setting: str = "WPP_GATEWAY_SECRET"
    starting_grace_minutes: float = DEFAULT_STARTING_GRACE_MINUTES
    silent_action: str = "alert"  # alert | restart
    status_max_age_minutes: float = DEFAULT_STATUS_MAX_AGE_MINUTES
    metrics_max_channels: int = DEFAULT_METRICS_MAX_CHANNELS

    @property
    def lock_file(self) -> Path:
        """The run lock lives beside the log."""
        return self.log_file.with_name(self.log_file.stem + ".lock")

    @property
    def state_path(self) -> Path:
        """Incidents across runs; beside the log unless HEALTHCHECK_STATE_FILE says otherwise."""
        return self.state_file or self.log_file.with_name("healthcheck-state.json")

    @property
    def alert_destinations(self) -> list[str]:
        """The alert channels configured, in delivery order."""
        return [name for name, on in (("webhook", self.webhook_url), ("email", self.smtp),
                                      ("command", self.alert_command)) if on]

    @cached_property
    def redact(self) -> "Redactor":
        """Masks this run's secrets in any text; built once."""
        return Redactor(self.secrets_to_hide, self.urls_to_hide)


@dataclass(frozen=True)
class ActivitySettings:
    """Where inbound messages are read from, and when a connected channel counts as silent."""

    url: str = field(repr=False)  # an SQLAlchemy database URL; it may hold a password
    query: str
    zone: Optional[str]  # IANA name for naive times; None: this machine's zone
    timeout: float = DEFAULT_ACTIVITY_TIMEOUT
    silent_hours: float = DEFAULT_SILENT_HOURS
    #: channel_key -> hours, or None where the channel is never called silent ("off").
    silent_hours_by_channel: tuple[tuple[str, Optional[float]], ...] = ()
    silent_min_minutes: float = DEFAULT_SILENT_MIN_MINUTES

    def ceiling_hours(self, channel_id: str) -> Optional[float]:
        """Return the silence ceiling for one channel, None when it is switched off."""
        return dict(self.silent_hours_by_channel).get(channel_key(channel_id), self.silent_hours)


@dataclass(frozen=True)
class SmtpSettings:
    """Where alert e-mails go."""

    host: str
    port: int
    user: Optional[str]
    password: Optional[str] = field(repr=False)
    sender: str
    recipients: tuple[str, ...]
    #: "starttls" (upgrade a plain connection), "ssl" (TLS from the first byte, port 465) or "off".
    tls: str = "starttls"
    #: The CA file that signed the SMTP server's certificate, instead of the system's.
    ca_bundle: Optional[Path] = None


class _EnvSource:
    """Values from the environment, then from the .env file, with errors that name both."""

    def __init__(self, env_file: Path, environ, explicit: bool):
        self.env_file = env_file
        self.environ = environ
        self.values: dict[str, str] = {}
        if env_file.is_file():
            try:
                # interpolate=False: the panel's reader takes values literally.
                # utf-8-sig: a .env saved by a Windows editor starts with a BOM, which would
                # otherwise become part of the first variable's name.
                loaded = dotenv_values(env_file, interpolate=False, encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise HealthcheckError(f"cannot read settings file {env_file}: "
                                       f"{type(exc).__name__}; check its permissions and "
                                       f"that it is UTF-8 text") from None
            self.values = {k: v for k, v in loaded.items() if v is not None}
        elif env_file.exists() and not _is_null_device(env_file):
            # A FIFO would block the run, a folder cannot be read: say what is there.
            given = " (given with --env-file)" if explicit else ""
            raise HealthcheckError(f"settings file {env_file}{given} is "
                                   f"{_file_kind(env_file.stat().st_mode)}, not a regular "
                                   f"file: give the path of a .env file")
        elif explicit and not env_file.exists():
            raise HealthcheckError(f"settings file {env_file} not found (given with --env-file)")

    def secret_is_exposed(self, name: str) -> bool:
        """True when `name` comes from the file and every user of the machine may read it.

        Group-readable is normal for a panel's .env: the web server's group reads it.
        """
        if name in self.environ or name not in self.values:
            return False
        try:
            return bool(self.env_file.stat().st_mode & 0o004)
        except OSError:
            return False

    def where(self, name: str) -> str:
        return f"set {name} in {self.env_file} or in the environment"

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        value = self.environ.get(name, self.values.get(name))
        if value is None:
            return default
        value = value.strip()
        return value if value else default

    def required(self, name: str, what: str) -> str:
        value = self.get(name)
        if value is None:
            if _is_null_device(self.env_file):  # --env-file /dev/null: the environment only
                raise HealthcheckError(f"{name} is missing: the settings file {self.env_file} "
                                       f"is the null device; set {name} in the environment "
                                       f"({what})")
            if not self.env_file.is_file():
                raise HealthcheckError(f"{name} is missing: the settings file {self.env_file} "
                                       f"does not exist; copy .env.example there (or pass "
                                       f"--env-file PATH) and set {name} ({what})")
            raise HealthcheckError(f"{name} is missing or empty: {self.where(name)} ({what})")
        return value

    def seconds(self, name: str, default: float, allow_zero: bool = False,
                unit: str = "seconds", high: float = 86400) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not (0 <= value if allow_zero else 0 < value) or not value < high:
            raise HealthcheckError(f"{name} must be a number of {unit} "
                                   f"{'from 0' if allow_zero else 'above 0'}, got "
                                   f"{quote_untrusted(raw, 40)!r}: {self.where(name)}")
        return value

    def count(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise HealthcheckError(f"{name} must be a whole number from {low} to {high}, "
                                   f"got {quote_untrusted(raw, 40)!r}: {self.where(name)}")
        return int(raw)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise HealthcheckError(f"{name} must be true or false, got "
                               f"{quote_untrusted(raw, 40)!r}: {self.where(name)}")

    def url(self, name: str) -> Optional[str]:
        value = self.get(name)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HealthcheckError(f"{name} must be an http:// or https:// address: "
                                       f"{self.where(name)}")
        return value

    def path(self, name: str, default: Optional[Path]) -> Optional[Path]:
        raw = self.get(name)
        if raw is None:
            return default
        path = Path(raw).expanduser()
        # Relative to the script, not to cron's working directory.
        return path if path.is_absolute() else SCRIPT_DIR / path


def _is_null_device(path: Path) -> bool:
    """True for /dev/null: an empty settings file, every setting from the environment."""
    try:
        return os.path.samefile(path, os.devnull)
    except OSError:
        return False


def load_settings(env_file: Optional[Path] = None, environ=None) -> Settings:
    """Return the run's settings, or raise HealthcheckError naming the bad variable."""
    environ = os.environ if environ is None else environ
    source = _EnvSource(env_file or DEFAULT_ENV_FILE, environ, explicit=env_file is not None)

    gateway = (source.get("HEALTHCHECK_GATEWAY") or "wrapper").lower()
    if gateway not in GATEWAY_TYPES:
        raise HealthcheckError(f"HEALTHCHECK_GATEWAY must be one of {', '.join(GATEWAY_TYPES)}, "
                               f"got {quote_untrusted(gateway, 40)!r}: "
                               f"{source.where('HEALTHCHECK_GATEWAY')}")
    # The wrapper's settings keep their names, so the operator's .env works unchanged.
    url_name, key_name = "HEALTHCHECK_GATEWAY_URL", "HEALTHCHECK_GATEWAY_KEY"
    if gateway == "wrapper":
        url_name = url_name if source.get(url_name) else "WPP_GATEWAY_BASE_URL"
        key_name = key_name if source.get(key_name) else "WPP_GATEWAY_SECRET"
    example = GATEWAY_TYPES[gateway]
    base_url = source.required(url_name, f"e.g. {example}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HealthcheckError(f"{url_name} must be an http:// or https:// address with a "
                               f"host, e.g. {example}: {source.where(url_name)}")
    try:
        _ = parts.port  # urlsplit only checks the port when asked
    except ValueError:
        raise HealthcheckError(f"{url_name} has a port that is not a number: "
                               f"{source.where(url_name)}") from None
    if parts.path.rstrip("/").lower().endswith("/api"):
        raise HealthcheckError(f"{url_name} ends in /api: give the gateway's address "
                               f"without it (the script adds the /api paths itself), e.g. "
                               f"{example}")

    stored_secret = source.required(key_name, "the gateway's key")
    infra_key = source.get("INFRA_SECRET_KEY")
    # Only the operator's panel stores its secret encrypted.
    secret = resolve_secret(stored_secret, infra_key, source.env_file) \
        if key_name == "WPP_GATEWAY_SECRET" else stored_secret
    if not re.fullmatch(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?", secret):
        raise HealthcheckError(f"{key_name} holds characters that cannot be sent in an "
                               f"HTTP header (non-ASCII or control characters): "
                               f"{source.where(key_name)}")
    silent_action = (source.get("HEALTHCHECK_SILENT_ACTION") or "alert").lower()
    if silent_action not in ("alert", "restart"):
        raise HealthcheckError(f"HEALTHCHECK_SILENT_ACTION must be alert or restart, got "
                               f"{quote_untrusted(silent_action, 40)!r}: "
                               f"{source.where('HEALTHCHECK_SILENT_ACTION')}")

    ca_bundle = source.path("HEALTHCHECK_CA_BUNDLE", None)
    if ca_bundle is not None and not ca_bundle.is_file():
        raise HealthcheckError(f"HEALTHCHECK_CA_BUNDLE names {ca_bundle}, which is not a file: "
                               f"{source.where('HEALTHCHECK_CA_BUNDLE')}")
    expected = source.get("HEALTHCHECK_EXPECTED_CHANNELS", "")
    ignore = source.get("HEALTHCHECK_IGNORE_CHANNELS", "")
    smtp = _load_smtp(source)
    webhook_url = source.url("HEALTHCHECK_ALERT_WEBHOOK_URL")
    ping_url = source.url("HEALTHCHECK_PING_URL")
    activity = _load_activity(source)
    urls = [u for u in (webhook_url, ping_url) if u]
    # The path of a webhook or ping URL is its token: hide it wherever it might show.
    urls += [urlsplit(u).path.strip("/") for u in urls if len(urlsplit(u).path.strip("/")) >= 8]

    return Settings(
        base_url=base_url.rstrip("/"),
        secret=secret,
        secrets_to_hide=tuple(s for s in (secret, stored_secret, infra_key, parts.password,
                                          smtp.password if smtp else None,
                                          *_database_passwords(source, activity)) if s),
        urls_to_hide=tuple(urls),
        env_file=source.env_file,
        log_file=source.path("HEALTHCHECK_LOG_FILE", SCRIPT_DIR / DEFAULT_LOG_FILE),
        connect_timeout=source.seconds("HEALTHCHECK_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        list_timeout=source.seconds("HEALTHCHECK_LIST_TIMEOUT", DEFAULT_LIST_TIMEOUT),
        qr_timeout=source.seconds("HEALTHCHECK_QR_TIMEOUT", DEFAULT_QR_TIMEOUT),
        deadline=source.seconds("HEALTHCHECK_DEADLINE", DEFAULT_DEADLINE),
        workers=source.count("HEALTHCHECK_WORKERS", DEFAULT_WORKERS, 1, 64),
        verify_tls=source.flag("HEALTHCHECK_VERIFY_TLS", True),
        ca_bundle=ca_bundle,
        expected_channels=tuple(name for name in
                                (channel_key(n) for n in expected.split(",")) if name),
        ignore_channels=tuple(name for name in
                              (channel_key(n) for n in ignore.split(",")) if name),
        state_file=source.path("HEALTHCHECK_STATE_FILE", None),
        verify_seconds=source.seconds("HEALTHCHECK_VERIFY_SECONDS", DEFAULT_VERIFY_SECONDS,
                                      allow_zero=True),
        alert_after=source.count("HEALTHCHECK_ALERT_AFTER", DEFAULT_ALERT_AFTER, 1, 1000),
        alert_repeat_hours=source.seconds("HEALTHCHECK_ALERT_REPEAT_HOURS",
                                          DEFAULT_ALERT_REPEAT_HOURS, allow_zero=True,
                                          unit="hours", high=24 * 365),
        alert_timeout=source.seconds("HEALTHCHECK_ALERT_TIMEOUT", DEFAULT_ALERT_TIMEOUT),
        webhook_url=webhook_url,
        alert_command=source.get("HEALTHCHECK_ALERT_COMMAND"),
        smtp=smtp,
        ping_url=ping_url,
        env_file_exposed=source.secret_is_exposed(key_name),
        gateway=gateway, url_setting=url_name, key_setting=key_name,
        starting_grace_minutes=source.seconds("HEALTHCHECK_STARTING_GRACE_MINUTES",
                                              DEFAULT_STARTING_GRACE_MINUTES, allow_zero=True,
                                              unit="minutes", high=24 * 60),
        silent_action=silent_action,
        qr_retry_hours=source.seconds("HEALTHCHECK_QR_RETRY_HOURS", DEFAULT_QR_RETRY_HOURS,
                                      unit="hours", high=24 * 365),
        flap_drops=source.count("HEALTHCHECK_FLAP_DROPS", DEFAULT_FLAP_DROPS, 0, 100),
        activity=activity,
        metrics_file=source.path("HEALTHCHECK_METRICS_FILE", None),
        metrics_max_channels=source.count("HEALTHCHECK_METRICS_MAX_CHANNELS",
                                          DEFAULT_METRICS_MAX_CHANNELS, 0, 10_000_000),
        status_max_age_minutes=source.seconds("HEALTHCHECK_STATUS_MAX_AGE_MINUTES",
                                              DEFAULT_STATUS_MAX_AGE_MINUTES, unit="minutes",
                                              high=7 * 24 * 60),
    )


def _load_activity(source: _EnvSource) -> Optional[ActivitySettings]:
    """Return where inbound messages are read from, None when HEALTHCHECK_ACTIVITY_DB is unset."""
    raw = source.get("HEALTHCHECK_ACTIVITY_DB")
    if raw is None:
        return None
    if raw.lower() == "panel":
        url = _panel_database_url(source)
        query = source.get("HEALTHCHECK_ACTIVITY_QUERY", PANEL_ACTIVITY_QUERY)
    else:
        scheme = raw.split("://", 1)[0]
        if "://" not in raw or not re.fullmatch(r"[a-z][a-z0-9]*(\+[a-z0-9_]+)?", scheme):
            raise HealthcheckError("HEALTHCHECK_ACTIVITY_DB must be a database URL "
                                   "(sqlite:///path, mysql+pymysql://user:pass@host:3306/db, "
                                   "postgresql+psycopg://user:pass@host/db) or the word panel: "
                                   f"{source.where('HEALTHCHECK_ACTIVITY_DB')}")
        url = raw
        query = source.required("HEALTHCHECK_ACTIVITY_QUERY", "SQL returning (channel, "
                                "received_at) rows received after :since; see the README")
    zone = source.get("HEALTHCHECK_ACTIVITY_TZ")
    if zone is not None:
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(zone)
        except (ValueError, OSError, KeyError, ImportError):  # ZoneInfoNotFoundError: KeyError
            raise HealthcheckError(f"HEALTHCHECK_ACTIVITY_TZ must be a time zone name like "
                                   f"America/Sao_Paulo or UTC, got "
                                   f"{quote_untrusted(zone, 40)!r}: "
                                   f"{source.where('HEALTHCHECK_ACTIVITY_TZ')}") from None
    return ActivitySettings(
        url=url, query=query, zone=zone,
        timeout=source.seconds("HEALTHCHECK_ACTIVITY_TIMEOUT", DEFAULT_ACTIVITY_TIMEOUT),
        silent_hours=source.seconds("HEALTHCHECK_SILENT_HOURS", DEFAULT_SILENT_HOURS,
                                    unit="hours", high=24 * 365),
        silent_hours_by_channel=_silent_hours_by_channel(source),
        silent_min_minutes=source.seconds("HEALTHCHECK_SILENT_MIN_MINUTES",
                                          DEFAULT_SILENT_MIN_MINUTES, allow_zero=True,
                                          unit="minutes", high=24 * 60 * 365),
    )


def _silent_hours_by_channel(source: _EnvSource) -> tuple[tuple[str, Optional[float]], ...]:
    """Parse `imobsites=168,orsegups=off` into (channel_key, hours or None) pairs."""
    name = "HEALTHCHECK_SILENT_HOURS_BY_CHANNEL"
    pairs = []
    for item in (source.get(name) or "").split(","):
        if not item.strip():
            continue
        channel, _, hours = item.rpartition("=")
        hours = hours.strip().lower()
        try:
            value = None if hours == "off" else float(hours)
        except ValueError:
            value = -1.0
        if not channel_key(channel) or (value is not None and not 0 < value < 24 * 365):
            raise HealthcheckError(f"{name} must be channel=hours or channel=off pairs, "
                                   f"comma-separated (imobsites=168,orsegups=off), got "
                                   f"{quote_untrusted(item, 60)!r}: {source.where(name)}")
        pairs.append((channel_key(channel), value))
    return tuple(pairs)


def _panel_database_url(source: _EnvSource, sockets: Sequence[str] = MYSQL_SOCKET_PATHS) -> str:
    """Return the panel's MySQL/MariaDB database (DB_HOST, DB_NAME...) as an SQLAlchemy URL.

    `localhost` is read as the panel's PHP (mysqli) reads it: the local socket, DB_SOCKET when
    given, else the first of `sockets` that is there. A user granted only @'localhost' on a
    server with --skip-name-resolve is refused over TCP. With no socket anywhere, TCP it is.
    """
    why = "the panel's database, for HEALTHCHECK_ACTIVITY_DB=panel"
    host = source.required("DB_HOST", why)
    name = source.required("DB_NAME", why)
    user = source.required("DB_USER", why)
    password = source.get("DB_PASS") or ""
    port = source.count("DB_PORT", 3306, 1, 65535)
    charset = source.get("DB_CHARSET", "utf8mb4")
    login = f"mysql+pymysql://{quote(user, safe='')}:{quote(password, safe='')}"
    options = f"{quote(name, safe='')}?charset={quote(charset, safe='')}"
    if host.lower() == "localhost":
        socket_path = source.get("DB_SOCKET") or next(
            (path for path in sockets if _is_unix_socket(path)), None)
        if socket_path:
            return f"{login}@localhost/{options}&unix_socket={quote(socket_path, safe='/')}"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{login}@{host}:{port}/{options}"


def _is_unix_socket(path: str) -> bool:
    import stat
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _database_passwords(source: _EnvSource, activity: Optional[ActivitySettings]) -> list[str]:
    """Return the activity database's password in each form it may show up in."""
    if activity is None:
        return []
    from urllib.parse import unquote
    found = [source.get("DB_PASS") or ""]
    try:
        encoded = urlsplit(activity.url).password or ""
    except ValueError:
        encoded = ""
    return found + [encoded, unquote(encoded)]


def _load_smtp(source: _EnvSource) -> Optional[SmtpSettings]:
    """Return the e-mail settings, None when HEALTHCHECK_SMTP_HOST is not set."""
    host = source.get("HEALTHCHECK_SMTP_HOST")
    if host is None:
        return None
    recipients = tuple(a.strip() for a in source.required(
        "HEALTHCHECK_SMTP_TO", "who gets the alert e-mails, comma-separated").split(",")
        if a.strip())
    tls = _smtp_tls_mode(source)
    port = source.count("HEALTHCHECK_SMTP_PORT", SMTP_DEFAULT_PORTS[tls or "starttls"], 1, 65535)
    ca_bundle = source.path("HEALTHCHECK_SMTP_CA_BUNDLE", None)
    if ca_bundle is not None and not ca_bundle.is_file():
        raise HealthcheckError(f"HEALTHCHECK_SMTP_CA_BUNDLE names {ca_bundle}, which is not a "
                               f"file: {source.where('HEALTHCHECK_SMTP_CA_BUNDLE')}")
    return SmtpSettings(
        host=host,
        port=port,
        user=source.get("HEALTHCHECK_SMTP_USER"),
        password=source.get("HEALTHCHECK_SMTP_PASSWORD"),
        sender=source.get("HEALTHCHECK_SMTP_FROM") or f"healthcheck-sessions@{_hostname()}",
        recipients=recipients,
        # Port 465 is implicit TLS (RFC 8314): a plain SMTP greeting is never sent there.
        tls=tls or ("ssl" if port == 465 else "starttls"),
        ca_bundle=ca_bundle,
    )


#: The usual port of each HEALTHCHECK_SMTP_TLS mode (RFC 8314: 465 implicit TLS, 587 submission).
SMTP_DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "off": 25}


def _smtp_tls_mode(source: _EnvSource) -> Optional[str]:
    """Return the SMTP TLS mode the settings ask for, None to choose it from the port.

    HEALTHCHECK_SMTP_STARTTLS, the older setting, is read as an alias: false is "off", true
    lets the port choose, so port 465 gets the implicit TLS it needs.
    """
    mode = source.get("HEALTHCHECK_SMTP_TLS")
    older = source.get("HEALTHCHECK_SMTP_STARTTLS")
    if mode is not None and older is not None:
        raise HealthcheckError(f"HEALTHCHECK_SMTP_TLS and HEALTHCHECK_SMTP_STARTTLS are both set: "
                               f"keep only HEALTHCHECK_SMTP_TLS (starttls, ssl or off): "
                               f"{source.where('HEALTHCHECK_SMTP_STARTTLS')}")
    if mode is None:
        return None if source.flag("HEALTHCHECK_SMTP_STARTTLS", True) else "off"
    if mode.lower() not in SMTP_DEFAULT_PORTS:
        raise HealthcheckError(f"HEALTHCHECK_SMTP_TLS must be starttls, ssl or off, got "
                               f"{quote_untrusted(mode, 40)!r}: "
                               f"{source.where('HEALTHCHECK_SMTP_TLS')}")
    return mode.lower()


def _hostname() -> str:
    import socket
    return socket.gethostname() or "localhost"


def install_hint(requirements: str) -> str:
    """Return the command that installs `requirements` for the script, a venv's pip first.

    Debian 12, Ubuntu 23.04 and later refuse a system-wide `pip install` (PEP 668): outside a
    venv, the way that works everywhere is a venv beside the script, run by cron.
    """
    if sys.prefix != sys.base_prefix:  # already in a venv: install into it
        return f"{sys.executable} -m pip install {requirements}"
    return (f"cd {SCRIPT_DIR} && python3 -m venv .venv && .venv/bin/pip install {requirements}"
            f", then run the script with {SCRIPT_DIR}/.venv/bin/python")


def is_panel_ciphertext(value: str, infra_key: Optional[str]) -> Optional[bytes]:
    """Return the raw IV+ciphertext when the panel's rule says `value` is encrypted."""
    if not infra_key or re.fullmatch(r"[0-9A-Fa-f]{32,}", value):
        return None  # 32+ hex characters is how the panel stores a plain secret
    import base64
    import binascii
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) >= 32 and len(raw) % 16 == 0 else None


def resolve_secret(stored: str, infra_key: Optional[str], env_file: Path) -> str:
    """Return the secret to send: the stored value, or its decryption as the panel does it."""
    raw = is_panel_ciphertext(stored, infra_key)
    if raw is None:
        return stored
    try:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise HealthcheckError(f"WPP_GATEWAY_SECRET is stored encrypted and the 'cryptography' "
                               f"package is not installed: run  {install_hint('cryptography')}"
                               ) from None
    import hashlib
    key = hashlib.sha256(infra_key.encode("utf-8")).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    padded = decryptor.update(raw[16:]) + decryptor.finalize()
    why = "bad padding"
    try:
        unpadder = padding.PKCS7(128).unpadder()
        text = (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
        if text.strip() and text.isprintable():
            return text.strip()
        why = "the result is not printable text"
    except ValueError:  # bad padding, or UnicodeDecodeError (a ValueError)
        pass
    raise HealthcheckError(f"WPP_GATEWAY_SECRET in {env_file} looks encrypted but does not "
                           f"decrypt with INFRA_SECRET_KEY ({why}): was INFRA_SECRET_KEY changed "
                           f"since the secret was saved? Save the secret again in the panel")


###############################################################################
# Gateway client ##############################################################
###############################################################################


@dataclass(frozen=True)
class Answer:
    """One HTTP answer from the gateway, read in full (bounded)."""

    status: int
    content_type: str
    www_authenticate: str
    location: str
    body: bytes
    #: For a 401: what the gateway that was asked says to check (its own settings, by name).
    key_refused: str = ""

    @property
    def is_html(self) -> bool:
        head = self.body[:200].lstrip().lower()
        return "html" in self.content_type or head.startswith((b"<!doctype", b"<html", b"<"))

    def json(self):
        """Return the decoded JSON body, or raise ValueError."""
        decoded, value = self._decoded
        if not decoded:
            raise ValueError("not JSON")
        return value

    @cached_property
    def _decoded(self) -> tuple[bool, object]:
        # Decoded once: a body of up to 10 MB is read by several classifiers.
        try:
            return True, json.loads(self.body.decode("utf-8-sig"))
        except (ValueError, RecursionError):  # RecursionError: nesting meant to crash parsers
            return False, None

    def error_text(self) -> Optional[str]:
        """Return the wrapper's `error`/`message` text, if the body carries one."""
        try:
            data = self.json()
        except ValueError:
            return None
        if isinstance(data, dict):
            for key in ("error", "message"):
                if isinstance(data.get(key), str) and data[key].strip():
                    return data[key]
        return None


class HttpClient:
    """Talks HTTP to the gateway: every call bounded in time and size, never redirected."""

    def __init__(self, settings: Settings, budget_end: float, auth_headers: dict[str, str],
                 key_refused: Optional[Callable[["Answer"], str]] = None):
        self.settings = settings
        self.budget_end = budget_end
        self._key_refused = key_refused
        self.display_url = display_url(settings.base_url)
        self._session = requests.Session()
        self._session.headers.update({**auth_headers,
                                      "Accept": "application/json",
                                      # No compressed answers: a small body cannot inflate.
                                      "Accept-Encoding": "identity",
                                      "User-Agent": f"{PROGRAM}/{__version__}"})
        # Given with each request: a Session-level value loses to REQUESTS_CA_BUNDLE.
        self._verify: object = True
        if not settings.verify_tls:
            self._verify = False
            import urllib3
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        elif settings.ca_bundle:
            self._verify = str(settings.ca_bundle)
        adapter = requests.adapters.HTTPAdapter(pool_connections=1,
                                                pool_maxsize=max(settings.workers, 1))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def list_call(self, method: str, path: str, **kwargs) -> Answer:
        """A call that lists sessions: HEALTHCHECK_LIST_TIMEOUT."""
        return self.call(method, path, self.settings.list_timeout, "HEALTHCHECK_LIST_TIMEOUT",
                         **kwargs)

    def session_call(self, method: str, path: str, **kwargs) -> Answer:
        """A call about one session (its state, its revival): HEALTHCHECK_QR_TIMEOUT."""
        return self.call(method, path, self.settings.qr_timeout, "HEALTHCHECK_QR_TIMEOUT",
                         **kwargs)

    def call(self, method: str, path: str, timeout: float, timeout_name: str,
             json_body=None, headers: Optional[dict[str, str]] = None) -> Answer:
        """Return the answer to one call, or raise HealthcheckError(CRITICAL) saying why not."""
        try:
            return self._exchange(method, path, timeout, timeout_name, json_body, headers)
        except HealthcheckError as exc:
            raise HealthcheckError(name_settings(str(exc), self.settings), exc.state) from None

    def _exchange(self, method: str, path: str, timeout: float, timeout_name: str,
                  json_body, headers) -> Answer:
        """Return the answer to one call, or raise HealthcheckError(CRITICAL) saying why not."""
        left = self.budget_end - time.monotonic()
        if left <= 0:
            raise HealthcheckError("deadline: no time left in HEALTHCHECK_DEADLINE", CRITICAL)
        limit, limit_name = (timeout, timeout_name) if timeout <= left else (
            left, "HEALTHCHECK_DEADLINE")
        too_slow = (f"no complete answer from {self.display_url} within {limit:g}s "
                    f"({limit_name}); the gateway or WPPConnect is hung or overloaded")
        try:
            return call_with_timeout(lambda: self._fetch(method, path, limit, too_slow,
                                                         json_body, headers), limit)
        except TimeoutError:
            raise HealthcheckError(too_slow, CRITICAL) from None

    def _fetch(self, method: str, path: str, limit: float, too_slow: str, json_body,
               headers) -> Answer:
        """Return the whole answer (at most MAX_BODY_BYTES), or raise HealthcheckError."""
        started = time.monotonic()
        try:
            response = self._session.request(
                method, self.settings.base_url + path, allow_redirects=False, stream=True,
                json=json_body, headers=headers, verify=self._verify,
                timeout=(min(self.settings.connect_timeout, limit), limit))
            with response:
                declared = response.headers.get("Content-Length", "").strip()
                # [0-9], not isdigit(): "²" is a digit to Python but not a length.
                if re.fullmatch(r"[0-9]{1,20}", declared) and int(declared) > MAX_BODY_BYTES:
                    raise self._too_big(response.status_code)
                encoding = response.headers.get("Content-Encoding", "").strip().lower()
                if encoding not in ("", "identity"):
                    # Not asked for; a few KB of gzip can inflate to gigabytes on old urllib3.
                    raise HealthcheckError(
                        f"{self.display_url} sent a compressed answer "
                        f"({quote_untrusted(encoding, 40)}) although none was asked for; "
                        f"refused unread: check the proxy in front of the gateway", CRITICAL)
                chunks, size = [], 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise self._too_big(response.status_code)
                    if time.monotonic() - started > limit:
                        raise HealthcheckError(too_slow, CRITICAL)  # the caller gave up already
                    chunks.append(chunk)
                answer = Answer(status=response.status_code,
                                content_type=response.headers.get("Content-Type", "").lower(),
                                www_authenticate=response.headers.get("WWW-Authenticate", ""),
                                location=response.headers.get("Location", ""),
                                body=b"".join(chunks))
                if answer.status == 401 and self._key_refused:
                    answer = dataclasses.replace(answer, key_refused=self._key_refused(answer))
                return answer
        except requests.exceptions.ReadTimeout:
            raise HealthcheckError(too_slow, CRITICAL) from None
        except requests.RequestException as exc:
            raise HealthcheckError(self._describe_transport_error(exc), CRITICAL) from None
        except ValueError as exc:
            # requests parses a Location even when it does not follow it: `http://[::1` or a
            # byte that is not UTF-8 raises here, not as a RequestException.
            raise HealthcheckError(f"{self.display_url} sent an answer that cannot be parsed "
                                   f"({type(exc).__name__}), such as a redirect to an address "
                                   f"that cannot be read; nothing was followed: check "
                                   f"WPP_GATEWAY_BASE_URL and the proxy in front of the gateway",
                                   CRITICAL) from None

    def _too_big(self, status: int) -> HealthcheckError:
        # A 2xx this size is an answer outside the contract (UNKNOWN); an error page, CRITICAL.
        return HealthcheckError(f"{self.display_url} sent an answer over "
                                f"{MAX_BODY_BYTES // 2**20} MB (HTTP {status}); refused unread: "
                                f"check that WPP_GATEWAY_BASE_URL points at the gateway",
                                UNKNOWN if 200 <= status < 300 else CRITICAL)

    def _describe_transport_error(self, exc: "requests.RequestException") -> str:
        """Say what failed below HTTP, and what to check."""
        where = self.display_url
        chain = _exception_chain_text(exc)
        if isinstance(exc, requests.exceptions.SSLError) and any(
                s in chain for s in ("wrong version number", "record layer failure",
                                     "http request", "unknown protocol")):
            return (f"TLS failure talking to {where}: the server answered in plain HTTP, not "
                    f"TLS; use http:// in WPP_GATEWAY_BASE_URL, or the port that serves https")
        if isinstance(exc, requests.exceptions.SSLError):
            return (f"TLS failure talking to {where}: the certificate was not accepted; "
                    f"check the gateway's certificate, or point HEALTHCHECK_CA_BUNDLE at the CA "
                    f"that signed it")
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return (f"timed out connecting to {where} after "
                    f"{self.settings.connect_timeout:g}s (HEALTHCHECK_CONNECT_TIMEOUT); check "
                    f"the host, the port and any firewall")
        if isinstance(exc, requests.exceptions.InvalidHeader):
            return "the secret cannot be sent as an HTTP header: check WPP_GATEWAY_SECRET"
        if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                            requests.exceptions.ContentDecodingError)):
            return (f"the connection to {where} broke while the answer was being read; "
                    f"check the gateway and the proxy in front of it")
        if isinstance(exc, requests.exceptions.ConnectionError):
            if any(s in chain for s in ("name or service not known", "nodename nor servname",
                                        "failed to resolve", "getaddrinfo failed",
                                        "temporary failure in name resolution",
                                        "no address associated")):
                return (f"gateway unreachable: the host name in {where} does not resolve; "
                        f"check the host in WPP_GATEWAY_BASE_URL and the DNS")
            if "refused" in chain:
                return (f"gateway unreachable: connection refused by {where}; check the host and "
                        f"port in WPP_GATEWAY_BASE_URL and that the gateway is running")
            if "reset" in chain or "aborted" in chain or "remotedisconnected" in chain:
                return (f"the connection to {where} was closed before a full answer; check the "
                        f"gateway and the proxy in front of it")
            return (f"gateway unreachable at {where}: {type(exc).__name__}; check the host, the "
                    f"port and the network")
        return f"request to {where} failed: {type(exc).__name__}"


def _exception_chain_text(exc: BaseException) -> str:
    """Return the lower-cased texts of an exception and its causes, for classification only."""
    texts, seen = [], set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts.append(f"{type(current).__name__} {current}")
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return " ".join(texts).lower()


def display_url(url: str) -> str:
    """Return scheme://host:port of a URL: no credentials, path or query."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:  # a port over 65535, an unclosed [, characters NFKC turns into / or ?
        return "an address that cannot be parsed"
    if ":" in host:
        host = f"[{host}]"
    return quote_untrusted(f"{parts.scheme}://{host}" + (f":{port}" if port else ""), 120)


def channel_path(channel_id: str) -> str:
    """Return a channel id percent-encoded as one path segment (`a/b c` -> `a%2Fb%20c`)."""
    if channel_id.strip(".") == "":
        # `.` and `..` would be resolved away by the client, leaving /api/channels.
        return "%2E" * len(channel_id)
    return quote(channel_id, safe="")


def channel_key(name: str) -> str:
    """Return a channel name as the panel matches it: case and spaces ignored."""
    return re.sub(r"\s+", "", name).lower()


def is_ignored(name: str, patterns: Sequence[str]) -> bool:
    """True when a channel matches HEALTHCHECK_IGNORE_CHANNELS (names or shell-style patterns)."""
    key = channel_key(name)
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def name_settings(text: str, settings: "Settings") -> str:
    """Return a message with the gateway settings named as this configuration names them.

    Messages are written for the wrapper's WPP_GATEWAY_BASE_URL and WPP_GATEWAY_SECRET; WAHA,
    Evolution and WPPConnect-Server are set with HEALTHCHECK_GATEWAY_URL and _KEY.
    """
    return (text.replace("WPP_GATEWAY_BASE_URL", settings.url_setting)
            .replace("WPP_GATEWAY_SECRET", settings.key_setting))


@dataclass(frozen=True)
class Abilities:
    """What a gateway's revive call can do, as plain data for the decision step."""

    #: A session that is starting or reconnecting may be revived once its grace is over.
    revive_transient: bool
    #: A connected session can be restarted without losing its login (for a silent one).
    restart_connected: bool
    #: The words that mean a lost login when a session's own start ends in them (WPPConnect's
    #: CLOSED: a QR was shown and closed unscanned after 60 s; it reads the same as stopped).
    lost_login_after_start: frozenset = frozenset()
    #: The words the gateway's own reconnect loop flips between (Evolution: close and
    #: connecting); an instance seen in both is one transient incident, not a stopped one.
    reconnect_loop_words: frozenset = frozenset()


class Gateway:
    """What every gateway client shares: its HTTP client, bounded by the run's budget.

    A client lists the sessions (`list_sessions`, mapping its own words onto conditions) and
    revives one without losing its login (`revive`); `abilities` says what revive can do.
    """

    abilities = Abilities(revive_transient=True, restart_connected=False)
    #: What a 401 from this gateway asks the operator to check: its own settings, by name.
    KEY_REFUSED = "the gateway refused the key; check HEALTHCHECK_GATEWAY_KEY"

    def __init__(self, settings: "Settings", budget_end: float):
        self.settings = settings
        self.budget_end = budget_end
        self.http = HttpClient(settings, budget_end, self.auth_headers(settings.secret),
                               self.key_refused)
        self.display_url = self.http.display_url

    def auth_headers(self, key: str) -> dict[str, str]:
        """The headers that carry the key on every call."""
        return {}

    def key_refused(self, answer: "Answer") -> str:
        """Return what to check when this gateway answers 401 (nginx's basic auth aside)."""
        return self.KEY_REFUSED


class WrapperGateway(Gateway):
    """The operator's gateway-wrapper: GET /api/channels, /qr to reconnect, start-session.

    `/qr` on a disconnected session makes WPPConnect reconnect from its stored login; a client
    that is not running is relaunched with start-session. The wrapper has no restart.
    """


    #: How the other gateways refuse a key, so that a wrapper setting pointed at one of them
    #: (HEALTHCHECK_GATEWAY left unset) says so: (its name, its HEALTHCHECK_GATEWAY, the fields
    #: of its 401 body).
    FOREIGN_REFUSALS = (("a WAHA", "waha", {"statusCode": 401}),
                        ("an Evolution API", "evolution", {"status": 401, "error": "Unauthorized"}))

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"X-Gateway-Secret": key}

    def key_refused(self, answer: "Answer") -> str:
        try:
            body = answer.json()
        except ValueError:
            body = None
        for name, kind, fields in self.FOREIGN_REFUSALS:
            if isinstance(body, dict) and all(body.get(k) == v for k, v in fields.items()):
                return (f"HEALTHCHECK_GATEWAY is wrapper: is this {name} server? It refused "
                        f"the key the way one does, not the way the wrapper does; then set "
                        f"HEALTHCHECK_GATEWAY={kind}, HEALTHCHECK_GATEWAY_URL and "
                        f"HEALTHCHECK_GATEWAY_KEY")
        hint = f"the gateway refused the secret; check {self.settings.key_setting}"
        if self.settings.key_setting == "WPP_GATEWAY_SECRET":  # only the panel encrypts it
            hint += " (and INFRA_SECRET_KEY if the secret is stored encrypted)"
        return hint

    def list_sessions(self) -> "Listing":
        return parse_listing(self.http.list_call("GET", "/api/channels"), self.display_url,
                             self.budget_end)

    def revive(self, channel: "Channel", restart: bool = False) -> "Kick":
        path = f"/api/channels/{channel_path(channel.id)}"
        answer = self.http.session_call("GET", path + "/qr")
        if not is_not_started(answer):
            return classify_qr_answer(answer, self.display_url)
        # /qr alone cannot revive a CLOSED client; start-session relaunches it from its login.
        return classify_start_answer(self.http.session_call("POST", path + "/start-session"),
                                     self.display_url)


#: WAHA's session statuses (src/structures/enums.dto.ts). FAILED is restarted: a logged-out
#: session comes back as SCAN_QR_CODE, which then goes to a person.
WAHA_CONDITIONS = {"WORKING": "connected", "STARTING": "transient",
                   "SCAN_QR_CODE": "needs_person", "STOPPED": "stopped", "FAILED": "stopped"}


class WahaGateway(Gateway):
    """WAHA: X-Api-Key; GET /api/sessions?all=true; POST /api/sessions/{name}/restart.

    Never /start (Core answers 422 on FAILED), never logout, DELETE or /api/server/stop.
    """

    abilities = Abilities(revive_transient=True, restart_connected=True)
    KEY_REFUSED = ("WAHA refused the key; check HEALTHCHECK_GATEWAY_KEY (WAHA's WAHA_API_KEY; a "
                   "WAHA started without one makes a key at boot and prints it in its log)")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"X-Api-Key": key}

    def list_sessions(self) -> "Listing":
        # all=true: without it a STOPPED session is not listed at all.
        data = json_answer(self.http.list_call("GET", "/api/sessions?all=true"),
                           self.display_url, "listing sessions")
        if not isinstance(data, list):
            raise HealthcheckError("listing sessions: the answer is not a list of sessions; "
                                   "check HEALTHCHECK_GATEWAY_URL and the WAHA version")
        channels, problems = [], []
        for position, entry in entries_in_time(data, self.budget_end, "listing sessions"):
            name = checked_id(entry, "name", position, problems)
            if name is None:
                continue
            word = entry.get("status") if isinstance(entry.get("status"), str) else ""
            word = clean_text(word.strip().upper())[:40]
            condition = WAHA_CONDITIONS.get(word, "stopped")
            detail = ("FAILED: restarted; if it fails again after the restart, its login is "
                      "gone and a person must scan a new QR" if word == "FAILED" else "")
            channels.append(Channel(name, word or "(none)", condition, detail))
        # WORKING is set by events and cached; the engine's own state is fresher (WEBJS's page
        # state, GOWS's socket). Read it for each WORKING session, at most WORKERS at a time.
        working = [c for c in channels if c.condition == "connected"]
        engines = run_bounded([lambda c=c: self._engine_trouble(c.id) for c in working],
                              self.settings.workers, self.budget_end)
        dead = {c.id: why for c, why in zip(working, engines) if why}
        channels = [Channel(c.id, c.status, "stopped", f"WORKING, but {dead[c.id]}: restarted")
                    if c.id in dead else c for c in channels]
        return Listing(channels, problems)

    def _engine_trouble(self, name: str) -> Optional[str]:
        """Return what the engine says is wrong with a WORKING session, None when nothing is.

        An answer that cannot be read says nothing: the session is left as WORKING.
        """
        try:
            data = self.http.session_call("GET", f"/api/sessions/{channel_path(name)}").json()
        except (HealthcheckError, ValueError):
            return None
        engine = data.get("engine") if isinstance(data, dict) else None
        if not isinstance(engine, dict):
            return None
        state = engine.get("state")
        if engine.get("engine") == "WEBJS" and isinstance(state, str) and state != "CONNECTED":
            return f"its WEBJS page says {quote_untrusted(state, 20)}"
        gows = engine.get("gows")
        if engine.get("engine") == "GOWS" and isinstance(gows, dict) \
                and gows.get("connected") is False:
            return "its GOWS engine says it is not connected"
        return None

    def revive(self, channel: "Channel", restart: bool = False) -> "Kick":
        answer = self.http.session_call("POST", f"/api/sessions/{channel_path(channel.id)}"
                                                f"/restart")
        if not 200 <= answer.status < 300:
            return Kick("failed", _describe_http_failure(answer, "restart call",
                                                         self.display_url))
        try:
            data = answer.json()
        except ValueError:
            data = None
        word = str(data.get("status", "")).upper() if isinstance(data, dict) else ""
        if word == "SCAN_QR_CODE":
            return Kick("qr_issued", "the stored login is no longer valid: a person must scan a "
                                     "new QR code (WAHA dashboard or GET /api/{session}/auth/qr)")
        if word == "WORKING":
            return Kick("already_connected", "WAHA answered the restart as WORKING")
        return Kick("reconnect_requested", "restart requested: WAHA restarts the session from "
                                           "its stored login")


#: Baileys close codes after which Evolution wipes the stored login (408 from 2.4.0 on).
EVOLUTION_LOGOUT_CODES = frozenset({401, 402, 403, 406, 408})
EVOLUTION_CONDITIONS = {"open": "connected", "connecting": "transient", "close": "stopped"}
#: The status shown for an instance connectionState gives no state for (not in memory).
EVOLUTION_NOT_LOADED = "(not loaded)"


#: What an instance that the running Evolution process has not loaded needs.
EVOLUTION_RESTART_ADVICE = ("connect refused with [object Object]: this Evolution process has "
                            "not loaded the instance, so no connect can revive it; restart the "
                            "Evolution process (it loads every instance and connects those "
                            "whose stored state is open or connecting); connect calls back "
                            "off meanwhile")


class EvolutionGateway(Gateway):
    """Evolution API v2: apikey; fetchInstances, then each instance's live connectionState.

    `close` is revived with GET /instance/connect (the stored creds), a dead `open` with POST
    /instance/restart. Never logout or delete.
    """

    abilities = Abilities(revive_transient=True, restart_connected=True,
                          reconnect_loop_words=frozenset({"close", "connecting"}))
    KEY_REFUSED = ("Evolution API refused the key; check HEALTHCHECK_GATEWAY_KEY (its global "
                   "AUTHENTICATION_API_KEY, not an instance's token)")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"apikey": key}

    def _json(self, answer: "Answer", what: str):
        """Evolution's JSON, with its two ways of failing that look like success named."""
        if answer.status == 503 and b"LICENSE_REQUIRED" in answer.body[:4096]:
            raise HealthcheckError(f"{what}: HTTP 503 LICENSE_REQUIRED: this Evolution API 2.4 "
                                   f"is not activated, so it refuses every call; activate its "
                                   f"license (its /manager page) and check again", CRITICAL)
        return json_answer(answer, self.display_url, what)

    def list_sessions(self) -> "Listing":
        # The rows are the database's copy, which lags: each instance's state is read live.
        rows = self._json(self.http.list_call("GET", "/instance/fetchInstances"),
                          "listing instances")
        if not isinstance(rows, list):
            raise HealthcheckError("listing instances: the answer is not a list of instances; "
                                   "check HEALTHCHECK_GATEWAY_URL and the Evolution API version")
        problems, named, seen = [], [], set()
        for position, row in entries_in_time(rows, self.budget_end, "listing instances"):
            name = checked_id(row, "name", position, problems)
            if name is not None and name not in seen:
                seen.add(name)
                named.append((name, row))
        states = run_bounded([lambda n=n: self._live_state(n) for n, _ in named],
                             self.settings.workers, self.budget_end)
        channels = []
        for (name, row), (state, error) in zip(named, [s or (None, "no time left") for s in
                                                        states]):
            if error:
                channels.append(unread_channel(name, "state", error))
                continue
            code = row.get("disconnectionReasonCode")
            condition = EVOLUTION_CONDITIONS.get(state, "stopped")
            detail = ""
            if state == "connecting" and row.get("connectionStatus") == "connecting":
                # The database is set to connecting each time a QR is generated; a plain
                # reconnect leaves it at open.
                condition, detail = "needs_person", "a QR code is waiting to be scanned"
            if state == "close" and code in EVOLUTION_LOGOUT_CODES:
                condition = "needs_person"
                detail = (f"closed with code {code}: Evolution wiped the stored login, a person "
                          f"must scan a new QR")
            channels.append(Channel(name, state or "(none)", condition, detail))
        return Listing(every_read_failed(channels, "instance"), problems)

    def _live_state(self, name: str) -> tuple[Optional[str], Optional[str]]:
        """Return (the instance's in-memory state word, None), or (None, the error text)."""
        try:
            data = self._json(self.http.session_call(
                "GET", f"/instance/connectionState/{channel_path(name)}"), "reading its state")
        except HealthcheckError as exc:
            return None, str(exc)
        instance = data.get("instance") if isinstance(data, dict) else None
        state = instance.get("state") if isinstance(instance, dict) else None
        # Listed in the database but not loaded in memory: stopped; a connect tells whether
        # this process can connect it at all.
        return (clean_text(state.strip().lower())[:40] if isinstance(state, str)
                else EVOLUTION_NOT_LOADED), None

    def revive(self, channel: "Channel", restart: bool = False) -> "Kick":
        name = channel_path(channel.id)
        # A dead open or a reconnect that never ends is restarted; anything else (closed, or
        # a QR waiting) is asked to connect, which only shows the QR when one is up.
        if restart or channel.status == "open" or (channel.status == "connecting"
                                                   and channel.condition == "transient"):
            answer, what = self.http.session_call("POST", f"/instance/restart/{name}"), "restart"
        else:
            answer, what = self.http.session_call("GET", f"/instance/connect/{name}"), "connect"
        try:
            data = self._json(answer, f"{what} call")
        except HealthcheckError as exc:
            return Kick("failed", str(exc))
        if isinstance(data, dict) and data.get("error") is True:
            if what == "connect" and data.get("message") == "[object Object]":
                # The instance is in the database, but this process never loaded it (created
                # or restored after it started): connect has no socket to open, every time.
                return Kick("restart_gateway", EVOLUTION_RESTART_ADVICE)
            # Evolution reports these failures with HTTP 200.
            return Kick("failed", f"{what} call refused (HTTP 200 with an error): "
                                  f"{quote_untrusted(data.get('message') or 'no reason')}")
        if isinstance(data, dict) and any(isinstance(data.get(k), str) and data[k].strip()
                                          for k in ("base64", "code", "pairingCode")):
            return Kick("qr_issued", "the stored login is no longer valid: a person must scan a "
                                     "new QR code in the Evolution manager")
        instance = data.get("instance") if isinstance(data, dict) else None
        if what == "connect" and isinstance(instance, dict) and instance.get("state") == "open":
            return Kick("already_connected", "Evolution answered the connect as open")
        return Kick("reconnect_requested", f"{what} requested: Evolution reconnects the instance "
                                           f"from its stored login")


#: What a CLOSED session that its own start did not bring back needs.
WPPCONNECT_LOGIN_GONE = ("its stored login is gone (the phone unlinked the device, or a QR "
                         "went unscanned for 60 s and WPPConnect closed it, which reads the "
                         "same as stopped): a person must scan a new QR (qrcode-session) with "
                         "the WhatsApp of that number within 60 s of a start")

WPPCONNECT_CONDITIONS = {"CONNECTED": "connected", "INITIALIZING": "transient",
                         "QRCODE": "needs_person", "PHONECODE": "needs_person",
                         "CLOSED": "stopped"}


class WppconnectGateway(Gateway):
    """WPPConnect-Server: the secret lists the names and mints a token per session.

    CLOSED is revived with start-session and the body {} (any other body overwrites the
    session's stored webhook settings); a CONNECTED session whose page is dead is closed and
    started again. Never close an INITIALIZING session: the real server answers 500, leaves
    its Chromium running, and every later start hangs. A lost login reads CLOSED, like a stop:
    CLOSED with the QR it last showed, or CLOSED again after its own start, needs a person. Never logout, clear-session-data or
    /unhealthy.
    """

    abilities = Abilities(revive_transient=False, restart_connected=True,
                          lost_login_after_start=frozenset({"CLOSED"}))
    # A wrong key is a 400 on the listing; a 401 is a session's token, minted with the key.
    KEY_REFUSED = ("the server refused the token minted for this session a moment ago (the key "
                   "itself was accepted); check that no proxy in front of WPPConnect-Server "
                   "drops the Authorization header, then the server's log")

    def __init__(self, settings: "Settings", budget_end: float):
        super().__init__(settings, budget_end)  # the key goes in paths, not in a header
        self._tokens: dict[str, str] = {}  # minted this run, in memory only

    def _secret_path(self) -> str:
        return quote(self.settings.secret, safe="")

    def list_sessions(self) -> "Listing":
        answer = self.http.list_call("GET", f"/api/{self._secret_path()}/show-all-sessions")
        if answer.status == 400 and b"incorrect" in answer.body[:1000]:
            raise HealthcheckError("listing sessions: HTTP 400, the server refused the key "
                                   "(SECRET_KEY); check HEALTHCHECK_GATEWAY_KEY", CRITICAL)
        data = json_answer(answer, self.display_url, "listing sessions")
        names = data.get("response") if isinstance(data, dict) else None
        if not isinstance(names, list):
            raise HealthcheckError("listing sessions: the answer holds no session list; check "
                                   "HEALTHCHECK_GATEWAY_URL and the WPPConnect-Server version")
        problems, checked = [], {}  # a dict keeps the order and finds duplicates at once
        for position, value in entries_in_time(names, self.budget_end, "listing sessions"):
            name = checked_id({"name": value}, "name", position, problems)
            if name is not None:
                checked.setdefault(name, None)
        found = run_bounded([lambda n=n: self._state(n) for n in checked],
                            self.settings.workers, self.budget_end)
        channels = []
        for name, state in zip(checked, found):
            channels.append(state if isinstance(state, Channel)
                            else unread_channel(name, "status", state or "no time left"))
        return Listing(every_read_failed(channels, "session"), problems)

    def _token(self, name: str) -> str:
        if name not in self._tokens:
            answer = self.http.session_call(
                "POST", f"/api/{channel_path(name)}/{self._secret_path()}/generate-token")
            data = json_answer(answer, self.display_url, "minting its token")
            token = data.get("token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise HealthcheckError("minting its token: the answer holds no token")
            # A token is as good as the secret for this session: hidden like it.
            self.settings.redact.add(token)
            self._tokens[name] = token
        return self._tokens[name]

    def _session_call(self, method: str, name: str, action: str, **kwargs) -> "Answer":
        return self.http.session_call(method, f"/api/{channel_path(name)}/{action}",
                                      headers={"Authorization": f"Bearer {self._token(name)}"},
                                      **kwargs)

    def _state(self, name: str):
        """Return the session as a Channel, or the error text."""
        try:
            data = json_answer(self._session_call("GET", name, "status-session"),
                               self.display_url, "reading its status")
            word = data.get("status") if isinstance(data, dict) else None
            word = clean_text(word.strip().upper())[:40] if isinstance(word, str) else "CLOSED"
            condition = WPPCONNECT_CONDITIONS.get(word, "transient")
            if word == "CLOSED" and any(isinstance(data.get(k), str) and data[k].strip()
                                        for k in ("urlcode", "qrcode")):
                # Only a start whose QR closed unscanned leaves CLOSED with a QR: autoClose
                # cannot reset the entry then (createSessionUtil.ts:113-121); a stop clears it.
                return Channel(name, word, "needs_person", WPPCONNECT_LOGIN_GONE)
            if word != "CONNECTED":
                return Channel(name, word, condition)
            # status-session says CONNECTED even when the browser page has died.
            alive = json_answer(self._session_call("GET", name, "check-connection-session"),
                                self.display_url, "checking its page")
            if isinstance(alive, dict) and alive.get("status") is True:
                return Channel(name, word, "connected")
            return Channel(name, word, "stopped", "CONNECTED but its page is dead "
                                                  "(check-connection-session says false)")
        except HealthcheckError as exc:
            return str(exc)

    def revive(self, channel: "Channel", restart: bool = False) -> "Kick":
        if channel.status in ("QRCODE", "PHONECODE"):
            # start-session is a no-op in these states: only a person can go on from here.
            return Kick("qr_issued", "a QR code (or a pairing code) is waiting: a person must "
                                     "scan it, with the WhatsApp of that number")
        if channel.status == "INITIALIZING":  # see the class docstring: never close it
            return Kick("failed", "not revived: the session is INITIALIZING, and closing it "
                                  "would leave its browser running for good")
        if channel.status == "CONNECTED":
            # start-session is a no-op while the status is CONNECTED: close it first. A 500
            # here means the client object is gone already; start-session still works.
            closed = self._session_call("POST", channel.id, "close-session")
            if not (200 <= closed.status < 300 or closed.status == 500):
                return Kick("failed", _describe_http_failure(closed, "close-session call",
                                                             self.display_url))
        answer = self._session_call("POST", channel.id, "start-session", json_body={})
        if not 200 <= answer.status < 300:
            return Kick("failed", _describe_http_failure(answer, "start-session call",
                                                         self.display_url))
        if channel.condition == "needs_person":
            return Kick("qr_issued", "start-session requested to show a new QR: "
                                     f"{channel.detail or WPPCONNECT_LOGIN_GONE}")
        # The answer is the status from before the start: the read after it (the verify, or
        # the next run) sees what came of it.
        return Kick("start_session_requested", "start-session requested: the server relaunches "
                                               "the session from its stored login, if it still "
                                               "has one (a QR, or CLOSED again, goes to a "
                                               "person)")


GATEWAYS = {"wrapper": WrapperGateway, "waha": WahaGateway, "evolution": EvolutionGateway,
            "wppconnect": WppconnectGateway}


###############################################################################
# Decision (pure) #############################################################
###############################################################################


@dataclass(frozen=True)
class Channel:
    """One channel (a session, an instance) as the gateway listed it."""

    id: str
    #: The gateway's own word (the wrapper's trimmed and lower-cased); "" when it gave none.
    status: str
    #: What the word means for the watchdog: connected, transient (starting, reconnecting),
    #: needs_person (a QR, a pairing code, a logged-out device), stopped (revivable from
    #: its stored login) or unknown (its status read failed this run). Empty: connected when
    #: the status says so, stopped otherwise.
    condition: str = ""
    #: What the gateway's answer told beyond the word (a logout code, a dead page).
    detail: str = ""

    def __post_init__(self):
        if not self.condition:
            object.__setattr__(self, "condition",
                               "connected" if self.status == "connected" else "stopped")

    @property
    def connected(self) -> bool:
        return self.condition == "connected"


@dataclass(frozen=True)
class Kick:
    """What a reconnect attempt on one channel came to."""

    outcome: str
    detail: str


@dataclass
class Listing:
    """The channels in a list answer, and what was wrong with the answer itself."""

    channels: list[Channel]
    problems: list[tuple[int, str]]


def unread_channel(name: str, what: str, error: str) -> Channel:
    """A listed session whose own status read failed: neither down nor recovered this run.

    Dropping it would close its incident (a false "resolved") and restart its grace; its
    incident and previous condition are kept instead (see plan_incidents).
    """
    return Channel(name, "(unknown)", "unknown",
                   f"status unknown this run (its incident is kept as it was): its {what} "
                   f"could not be read: {error}")


def every_read_failed(channels: list[Channel], noun: str) -> list[Channel]:
    """Return the channels; raise when every status read failed: the gateway is failing."""
    unread = [c for c in channels if c.condition == "unknown"]
    if unread and len(unread) == len(channels):
        raise HealthcheckError(f"every status read failed ({_plural(len(channels), noun)} "
                               f"listed), so the gateway is failing; the first: "
                               f"{unread[0].detail.split(': ', 1)[1]}", CRITICAL)
    return channels


def _describe_http_failure(answer: Answer, what: str, base: str) -> str:
    """Say why a non-2xx answer came, and what to check."""
    status = answer.status
    error = answer.error_text()
    if 300 <= status < 400:
        target = quote_untrusted(display_url(answer.location) if "://" in answer.location
                                 else answer.location or "nowhere", 120)
        return (f"{what}: HTTP {status} redirect to {target}, not followed (it would carry "
                f"the secret); set WPP_GATEWAY_BASE_URL to the address that answers directly")
    if status == 401:
        if "basic" in answer.www_authenticate.lower():
            return (f"{what}: HTTP 401 with a basic-auth challenge: something in front of /api "
                    f"(nginx basic auth) wants a password; exempt /api from basic auth")
        if answer.key_refused:  # the gateway's own words
            return f"{what}: HTTP 401, {answer.key_refused}"
        return (f"{what}: HTTP 401, the gateway refused the secret; check WPP_GATEWAY_SECRET "
                f"(and INFRA_SECRET_KEY if the secret is stored encrypted)")
    if status == 403:
        return (f"{what}: HTTP 403 forbidden; check WPP_GATEWAY_SECRET and any IP allow-list "
                f"in front of the gateway")
    if error and not answer.is_html:
        return f"{what}: HTTP {status}, gateway error: {quote_untrusted(error)}"
    if status == 404:
        return (f"{what}: HTTP 404 {'HTML page' if answer.is_html else 'not found'}: this is "
                f"not the gateway's API; is the port in WPP_GATEWAY_BASE_URL right (:8443)?")
    if status in (502, 503, 504):
        return (f"{what}: HTTP {status} from the proxy at {base}: the gateway container is "
                f"down, restarting or too slow; check the gateway and WPPConnect")
    kind = "an HTML page" if answer.is_html else "no JSON error"
    return f"{what}: HTTP {status} with {kind}; check the gateway's logs"


def json_answer(answer: Answer, base: str, what: str):
    """Return the JSON of a 2xx answer, or raise HealthcheckError saying why there is none."""
    if not 200 <= answer.status < 300:
        raise HealthcheckError(_describe_http_failure(answer, what, base), CRITICAL)
    if answer.is_html:
        raise HealthcheckError(f"{what}: HTTP {answer.status} with an HTML page, not "
                               f"the gateway's JSON; check WPP_GATEWAY_BASE_URL (the port :8443?)")
    try:
        return answer.json()
    except ValueError:
        raise HealthcheckError(f"{what}: HTTP {answer.status} but the body is not "
                               f"valid JSON; check the gateway's logs") from None


def entries_in_time(entries: list, budget_end: float, what: str):
    """Yield (position from 1, entry); raise HealthcheckError when time runs short first.

    Checking 200,000 entries takes seconds, and reporting on them as long again: reading stops
    once it has taken as long as the time left before `budget_end`, so that the deadline holds
    whatever the listing's size.
    """
    started = time.monotonic()
    for position, entry in enumerate(entries, 1):
        if position % DEADLINE_CHECK_EVERY == 0 and \
                time.monotonic() - started > budget_end - time.monotonic():
            raise HealthcheckError(f"deadline: no time left in HEALTHCHECK_DEADLINE while "
                                   f"{what} ({position} of {len(entries)} read, none kicked): "
                                   f"raise -t for a listing this size", CRITICAL)
        yield position, entry


def checked_id(entry, key: str, position: int, problems: list) -> Optional[str]:
    """Return entry[key] when it is an id fit to request and store, else None (problem added)."""
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value.strip():
        problems.append((UNKNOWN, f"channel entry #{position} has no usable id, skipped: "
                                  f"{quote_untrusted(entry, 80)}"))
        return None
    # Half an emoji (a lone surrogate) cannot be sent in a URL: replaced, still handled.
    value = _SURROGATES.sub("\ufffd", value)
    if (value.strip(".") == "" or len(value) > MAX_CHANNEL_ID_CHARS
            or _untrusted_redactor(value) != value):
        # `.` and `..` would leave /api/channels/<id>/ (clients resolve them away); an id
        # longer than any real one would flood the log and the state.
        problems.append((UNKNOWN, f"channel entry #{position} has an id that cannot be a "
                                  f"channel (only dots, over {MAX_CHANNEL_ID_CHARS} "
                                  f"characters, or holding a secret), skipped: "
                                  f"{quote_untrusted(value, 60)}"))
        return None
    return value


def parse_listing(answer: Answer, base: str, budget_end: float = float("inf")) -> Listing:
    """Return the channels of a GET /api/channels answer, or raise HealthcheckError."""
    data = json_answer(answer, base, "listing channels")
    entries = _find_channel_list(data)
    if entries is None:
        error = data.get("error") if isinstance(data, dict) else None
        hint = f", gateway error: {quote_untrusted(error)}" if isinstance(error, str) else ""
        raise HealthcheckError(f"listing channels: the answer holds no channel list{hint}; "
                               f"check the gateway version")
    channels, problems, seen = [], [], set()
    for position, entry in entries_in_time(entries, budget_end, "listing channels"):
        field = _entry_id_field(entry)
        channel_id = checked_id(entry, field, position, problems)
        if channel_id is None:
            continue
        if channel_id in seen:
            continue
        seen.add(channel_id)
        status = entry.get("status")
        word = _SURROGATES.sub("\ufffd", status.strip().lower()) \
            if isinstance(status, str) else ""
        channels.append(Channel(channel_id, word, "transient"
                                if word in WRAPPER_TRANSIENT_STATUSES else ""))
    return Listing(channels, problems)


def _find_channel_list(data) -> Optional[list]:
    if isinstance(data, list):
        return data
    if not isinstance(data, dict) or data.get("success") is False:
        return None
    for holder in (data, data.get("data")):
        if isinstance(holder, list):
            return holder
        if isinstance(holder, dict) and isinstance(holder.get("channels"), list):
            return holder["channels"]
    return None


def _entry_id_field(entry) -> str:
    """The wrapper's id is `id`; older readers fall back to `name`, then `channel_id`."""
    for key in ("id", "name", "channel_id"):
        value = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(value, str) and value.strip():
            return key
    return "id"


def is_not_started(answer: Answer) -> bool:
    """True when the gateway says the WPPConnect client is not running (CLOSED)."""
    return b"session not started" in answer.body[:MAX_QUOTE_CHARS * 10].lower()


def classify_qr_answer(answer: Answer, base: str) -> Kick:
    """Return what a /qr answer means for the session (see the gateway contract)."""
    error = answer.error_text() or ""
    if answer.status == 500 and "invalid qr code response" in error.lower():
        # Before a gateway patch, asking a connected session for a QR answered 500.
        return Kick("already_connected", "the gateway answered as for a connected session")
    if not 200 <= answer.status < 300:
        return Kick("failed", _describe_http_failure(answer, "reconnect call", base))
    try:
        data = answer.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Kick("failed", f"reconnect call: HTTP {answer.status} without a JSON object; "
                              f"check WPP_GATEWAY_BASE_URL")
    if data.get("success") is False:
        return Kick("failed", f"reconnect call refused: {quote_untrusted(error or 'no reason')}")
    holders = [data] + [data[k] for k in ("data", "result") if isinstance(data.get(k), dict)]
    for holder in holders:
        for name in QR_IMAGE_FIELDS:
            if isinstance(holder.get(name), str) and holder[name].strip():
                return Kick("qr_issued", "the stored login is no longer valid: a person must "
                                         "scan a new QR code in the panel")
    statuses = {h.get(k).strip().lower() for h in holders for k in ("status", "state")
                if isinstance(h.get(k), str)}
    if statuses & CONNECTED_QR_STATUSES:
        return Kick("already_connected", "the session answered as connected")
    if statuses & STARTING_QR_STATUSES:
        return Kick("starting", "the session is still starting")
    return Kick("reconnect_requested", "reconnect requested from the stored login")


def classify_start_answer(answer: Answer, base: str) -> Kick:
    """Return what a start-session answer means."""
    if answer.status == 404:
        return Kick("failed", "the session is not started and this gateway has no "
                              "start-session route (HTTP 404): start it from the panel")
    if not 200 <= answer.status < 300:
        return Kick("failed", _describe_http_failure(answer, "start-session call", base))
    try:
        data = answer.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("success") is False:
        return Kick("failed", "start-session refused: "
                              f"{quote_untrusted(answer.error_text() or 'no reason')}")
    return Kick("start_session_requested", "the session was not started; start-session "
                                           "requested, it relaunches from the stored login")


class ActivityRowError(ValueError):
    """The activity query failed, or returned a row that is not (channel, received_at)."""


def to_epoch(value, zone, fold: int = 0) -> Optional[float]:
    """Return a received_at value as epoch seconds; None for NULL; raise ActivityRowError.

    Naive datetimes are in `zone` (a tzinfo; None: this machine's zone); `fold` 1 reads one in
    the hour a clock change repeats as its second pass. Numbers are epoch seconds, or
    milliseconds when too large to be seconds (what JavaScript stores). A time no date can
    show comes back as NaN, which `is_usable_time` refuses.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        try:
            if value.tzinfo is None:
                value = value.replace(fold=fold) if zone is None else \
                    value.replace(tzinfo=zone, fold=fold)
            return value.timestamp()
        except (OverflowError, ValueError, OSError):  # year 1 or 9999 shifted out of range
            return math.nan
    local = naive_time(value)
    if local is not None:
        return to_epoch(local, zone, fold)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        try:
            return to_epoch(float(text), zone)
        except ValueError:
            pass
        try:  # SQLite keeps datetimes as text
            return to_epoch(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
        except ValueError:
            raise ActivityRowError(f"received_at {quote_untrusted(text, 40)!r} is neither a "
                                   f"date and time nor epoch seconds") from None
    if isinstance(value, bool):
        raise ActivityRowError("received_at is a boolean, not a time")
    try:
        number = float(value)  # int, float, Decimal
    except OverflowError:
        return math.nan  # an integer too large for any date
    except (TypeError, ValueError):
        raise ActivityRowError(f"received_at is a {type(value).__name__}, neither a date and "
                               f"time nor epoch seconds") from None
    return number / 1000 if number > 1e11 else number


def naive_time(value) -> Optional[datetime]:
    """Return the value as a naive date and time when it is one (or text of one), else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is None else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or re.fullmatch(r"\s*[-+0-9.eE]*\s*", value):
        return None  # epoch seconds as text are not local times
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else None


def is_usable_time(at, now: float) -> bool:
    """Return whether epoch seconds can be kept: finite, a date, not more than a day ahead."""
    return _is_time(at) and at <= now + ACTIVITY_MAX_AHEAD


def learn_activity(previous: dict, events, now: float, listed: set,
                   repeats: Sequence[tuple[float, float]] = (),
                   tally: Optional[dict] = None, expected: Sequence[str] = ()) -> dict:
    """Return the activity history with new (channel_key, epoch seconds) events counted in.

    Pure: `previous` is not changed. Per channel it keeps the first and last inbound time, since
    when the gateway no longer lists it (`unlisted_since`, only then), and the messages of the
    last four weeks counted by hour: `counts` holds at most 672 comma-separated numbers from
    the hour `base` (its first hour with a message) on, so the history has a bounded size per
    channel (a few bytes for a quiet one, about 2 KB for a busy one) whatever the table holds.
    A channel's history is kept while it is listed, expected, or was listed within the last
    four weeks: a channel missing from a few listings must not lose what its silence rule
    needs. Events at or before the previous high-water mark were counted by an earlier run and
    are skipped, so a query that ignores :since cannot count a message twice.

    A time that cannot be kept (`is_usable_time`) is skipped; one more than
    ACTIVITY_AHEAD_TOLERANCE ahead of `now` waits for its time to come, and its channel is
    flagged `ahead` (its silence cannot be judged). An event whose time is a pair (first pass,
    second pass) lies in an hour the clock repeated, one of `repeats` (turn, length): those are
    counted by number, not by the mark (`split_repeated`). `tally` gets what was skipped.
    """
    mark = previous.get("since")
    mark = mark if _is_time(mark) else None
    old_channels = previous.get("channels")
    wanted = set(listed) | set(expected)
    learned, unlisted = {}, {}
    for key, entry in (old_channels.items() if isinstance(old_channels, dict) else ()):
        if not isinstance(entry, dict):
            continue
        if key not in listed:
            # Without the mark, it was listed on the run that wrote it: missing from now on.
            since = entry.get("unlisted_since")
            unlisted[key] = min(since, now) if _is_time(since) else now
            if key not in wanted and unlisted[key] <= now - ACTIVITY_WINDOW_SECONDS:
                continue
        learned[key] = (entry.get("first"), entry.get("last"), hourly_counts(entry))
    newest = mark
    unusable, ahead, ahead_by, repeated = 0, {}, 0.0, {}

    def count(key, at):
        nonlocal newest
        newest = at if newest is None else max(newest, at)
        at = min(at, now)  # a clock ahead of ours must not make a silence negative
        first, last, hours = learned.setdefault(key, (at, at, {}))
        learned[key] = (min(first, at) if _is_time(first) else at,
                        max(last, at) if _is_time(last) else at, hours)
        hour = int(at // 3600)
        hours[hour] = hours.get(hour, 0) + 1

    for key, at in events:
        if key not in wanted and key not in learned:
            continue
        if isinstance(at, tuple):
            turn = next((t for t, length in repeats if t - length <= at[0] < t), None)
            if turn is not None:
                repeated.setdefault((turn, key), []).append(at)
                continue
            at = at[0]
        if not is_usable_time(at, now):
            unusable += 1
        elif at > now + ACTIVITY_AHEAD_TOLERANCE:
            ahead[key] = ahead.get(key, 0) + 1
            ahead_by = max(ahead_by, at - now)
        elif mark is None or at > mark:
            count(key, at)
    old_repeats = previous.get("repeats") if isinstance(previous.get("repeats"), dict) else {}
    kept_repeats = {}
    for turn, length in repeats:
        record = old_repeats.get(f"{turn:.0f}")
        record = record if isinstance(record, dict) else {}
        counted_now = {}
        for key in sorted({k for t, k in repeated if t == turn}
                          | (set(record) & (wanted | set(learned)))):
            rows = sorted(repeated.get((turn, key), []))
            counted = record.get(key)
            if not (isinstance(counted, list) and len(counted) == 2
                    and all(_count(c) == c for c in counted)):
                # Not yet seen, or an older version read them all as first-pass times.
                counted = [0, 0] if mark is None or mark < turn - length else \
                    [sum(first <= mark for first, _ in rows), 0]
            first_pass, second_pass = split_repeated(rows, counted, mark, now, turn - length,
                                                     turn)
            for at in first_pass + second_pass:
                count(key, at)
            counted_now[key] = [counted[0] + len(first_pass), counted[1] + len(second_pass)]
        if counted_now:
            kept_repeats[turn] = (length, counted_now)
    window = int((now - ACTIVITY_WINDOW_SECONDS) // 3600)
    channels = {}
    for key, (first, last, hours) in learned.items():
        kept = [h for h in hours if h >= window]
        base = min(kept, default=window)
        top = max(kept, default=window - 1)
        channels[key] = {"first": first, "last": last, "base": base,
                         "counts": ",".join(str(min(hours[h], MAX_HOURLY_COUNT))
                                            if hours.get(h) else ""
                                            for h in range(base, top + 1))}
        if key in ahead:
            channels[key]["ahead"] = True
        if key not in listed:
            channels[key]["unlisted_since"] = unlisted.get(key, now)
    if tally is not None:
        tally.update(unusable=unusable, ahead=sum(ahead.values()), ahead_by=ahead_by)
    history = {"since": newest, "channels": channels}
    # Until a time after the repeated hour is read, the next run reads that hour again: it
    # needs to know how many of its rows were counted, and in which pass.
    still_open = {f"{turn:.0f}": counted for turn, (length, counted) in kept_repeats.items()
                  if newest is None or newest < turn + length}
    if still_open:
        history["repeats"] = still_open
    return history


def split_repeated(rows: list, counted: list, mark: Optional[float], now: float,
                   begin: float, turn: float) -> tuple[list[float], list[float]]:
    """Return the epochs to count now, (first pass, second pass), of a channel's repeated hour.

    `rows` are the (first-pass, second-pass) readings of every row of that hour the source
    holds, sorted; `counted` how many of them earlier runs counted in each pass; `mark` the
    newest time counted before; the first pass ran from `begin` until the clock went back at
    `turn`. Rows come in time order, the whole first pass then the second, so the number of new
    rows is exact; which pass an ambiguous one belongs to is judged from what earlier runs saw.
    """
    new = len(rows) - counted[0] - counted[1]
    if new <= 0:
        return [], []

    def latest(candidates: list, number: int) -> list[float]:
        """The second pass runs up to now: its new rows are the latest readings already due."""
        due = [r for r in candidates if r[1] <= now]
        return [r[1] for r in ([r for r in candidates if r[1] > now] + due)[-number:]]

    if mark is not None and mark >= turn:
        return [], latest(rows, new)  # a second-pass row was counted: the first pass is whole
    old = [r for r in rows if mark is not None and r[0] <= mark]
    fresh = [r for r in rows if mark is None or r[0] > mark]
    first = [r[0] for r in fresh if r[1] > now]  # its second-pass reading has not come yet
    either = [r for r in fresh if r[1] <= now]
    second = []
    if len(old) > counted[0]:  # the first pass up to the mark was counted: the rest is new
        second = latest(old, len(old) - counted[0])
    if second or mark is None or mark < begin:
        # Both passes went on past the mark, or no run saw the hour: they interleave in
        # sorted order, one row of each per moment.
        first += [r[0] for r in either[0::2]]
        second += [r[1] for r in either[1::2]]
    else:  # no second-pass row up to the mark: the first pass went on, the channel is quiet
        first += [r[0] for r in either]
    return first, second


def cap_history(activity: dict, excess: int) -> tuple[dict, int]:
    """Return the history without at least `excess` bytes of it, and how many channels went.

    Pure. The channels the gateway no longer lists go first, the longest missing first, then
    those whose last message is the oldest: what a silence rule is least likely to need. The
    high-water mark stays, so a channel dropped learns afresh from now on rather than counting
    old rows twice.
    """
    channels = activity.get("channels") if isinstance(activity.get("channels"), dict) else {}

    def age(key):
        entry = channels[key]
        since, last = entry.get("unlisted_since"), entry.get("last")
        return (not _is_time(since), since if _is_time(since) else 0,
                last if _is_time(last) else 0)

    kept, freed, dropped = dict(channels), 0, 0
    for key in sorted(channels, key=age):
        if freed >= excess:
            break
        # Its size in the file: the entry at depth 3 of `json.dumps(..., indent=1)`.
        freed += len(json.dumps({key: channels[key]}, indent=1, ensure_ascii=True)) + \
            3 * (len(channels[key]) + 2)
        del kept[key]
        dropped += 1
    return {**activity, "channels": kept}, dropped


def hourly_counts(entry: dict) -> dict:
    """Return a channel's {epoch hour: inbound messages}, read from its kept `base`/`counts`."""
    base, counts = entry.get("base"), entry.get("counts")
    if not isinstance(base, int) or isinstance(base, bool) or not isinstance(counts, str):
        return {}  # a hand-edited or older history: learn afresh
    return {base + i: int(c) for i, c in enumerate(counts.split(",")[:HOURS_PER_WEEK * 5])
            if c and len(c) <= 9 and c.isascii() and c.isdigit() and int(c)}


def _is_time(value) -> bool:
    """Whether a kept value is epoch seconds a date can show (a NaN or year 58894 is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and 0 <= value <= MAX_EPOCH


@dataclass(frozen=True)
class Silence:
    """A connected channel that has stopped receiving: since when, and what it would have had."""

    last_inbound: float  # epoch seconds
    expected: float      # inbound messages its history says it would normally have had by now
    rule: str            # "history" (its own rhythm) or "ceiling" (HEALTHCHECK_SILENT_HOURS)


def expected_inbound(entry: dict, now: float) -> float:
    """Return how many messages the channel would normally have received since its last one.

    Its rate for each hour of the week is learned from the four weeks before the silence
    (messages in that hour-of-week / how often that hour-of-week occurred), then summed over
    the hours of the silence.
    """
    first, last = entry.get("first"), entry.get("last")
    if not (_is_time(first) and _is_time(last)) or last >= now:
        return 0.0
    start_hour = int(max(first, now - ACTIVITY_WINDOW_SECONDS) // 3600)
    last_hour = int(last // 3600)
    counts, seen = [0] * HOURS_PER_WEEK, [0] * HOURS_PER_WEEK
    for hour in range(start_hour, last_hour + 1):
        seen[hour % HOURS_PER_WEEK] += 1
    for hour, number in hourly_counts(entry).items():
        if start_hour <= hour <= last_hour:
            counts[hour % HOURS_PER_WEEK] += number
    total = 0.0
    for hour in range(last_hour, int(now // 3600) + 1):
        slot = hour % HOURS_PER_WEEK
        if seen[slot]:
            overlap = min(now, (hour + 1) * 3600) - max(last, hour * 3600)
            total += counts[slot] / seen[slot] * max(overlap, 0) / 3600
    return total


def assess_silence(entry: Optional[dict], now: float, ceiling_hours: Optional[float],
                   min_minutes: float) -> Optional[Silence]:
    """Return the channel's silence when it is one, None when its quiet is normal.

    A channel never heard from is never silent; `ceiling_hours` None switches the rule off.
    """
    if not entry or ceiling_hours is None or not _is_time(entry.get("last")):
        return None
    if entry.get("ahead"):
        return None  # its newest rows are dated ahead of our clock: its times are not trusted
    last = entry["last"]
    quiet = now - last
    expected = expected_inbound(entry, now)
    if quiet >= ceiling_hours * 3600:
        return Silence(last, expected, "ceiling")
    has_history = _is_time(entry.get("first")) and now - entry["first"] >= \
        ACTIVITY_MIN_HISTORY_SECONDS
    if has_history and quiet >= min_minutes * 60 and expected >= SILENT_EXPECTED_MESSAGES:
        return Silence(last, expected, "history")
    return None


def _is_power_of_two(number: int) -> bool:
    return number > 0 and number & (number - 1) == 0


@dataclass(frozen=True)
class ChannelPlan:
    """What this run does with one listed channel, decided before any call is made."""

    channel: Channel
    action: str  # none | kick | restart_silent | alert_silent | wait_qr | wait_grace | ...
    detail: str = ""
    silence: Optional[Silence] = None
    #: Revived (--force) while still inside its starting grace: reported, not yet alerted.
    in_grace: bool = False


@dataclass
class Plan:
    """The run's decisions: one entry per listed channel, and what the list itself shows."""

    channels: list[ChannelPlan]
    problems: list[tuple[int, str]]
    missing: list[str]

    @property
    def revivals(self) -> list[tuple[Channel, bool]]:
        """The channels to revive, each with whether it is a restart of a connected one."""
        return [(p.channel, p.action == "restart_silent") for p in self.channels
                if p.action in ("kick", "restart_silent", "revive_loop")]


def qr_kick_due(incident: Optional[dict], status: str, now: datetime,
                retry_hours: float, needs_person: bool = False) -> tuple[bool, str]:
    """Return whether a channel not connected is kicked this run, and why not when it is not.

    A kick that issued a QR started a browser that only a scan can finish: kick again on runs
    2, 4, 8, 16... of the QR phase, then every `retry_hours`, and at once when the status
    changes (something happened on the gateway).
    """
    backing_off = needs_person or (incident or {}).get("last_kick_outcome") in PERSON_OUTCOMES
    if not incident or not backing_off or not incident.get("last_kick_at"):
        return True, ""
    if incident.get("last_status") != (status or "(none)"):
        return True, ""
    base = _count(incident.get("qr_since_run")) or 1
    run = _count(incident.get("runs_down")) + 1 - base + 1
    last_run = _count(incident.get("last_kick_run")) - base + 1
    last_at = _parse_time(incident.get("last_kick_at"))
    if last_at is None or last_run < 1:
        return True, ""
    retry_at = last_at + timedelta(hours=retry_hours)
    if now >= retry_at:
        return True, ""
    doubling = _is_power_of_two(last_run)
    if doubling and _is_power_of_two(run) and run > last_run:
        return True, ""
    when = f"at {retry_at.strftime('%Y-%m-%d %H:%M')}"
    if doubling:
        when = f"on run {2 * last_run + base - 1} of the incident or {when}, whichever is first"
    return False, (f"not kicked this run: it waits for a person (a QR or a pairing code) and "
                   f"only they can finish it; next kick {when} (or now with --force)")


@dataclass(frozen=True)
class PlanPolicy:
    """The settings and the gateway's abilities the plan follows, as plain data."""

    qr_retry_hours: float = DEFAULT_QR_RETRY_HOURS
    starting_grace_minutes: float = DEFAULT_STARTING_GRACE_MINUTES
    revive_transient: bool = True
    restart_silent: bool = False
    #: HEALTHCHECK_IGNORE_CHANNELS, as channel_key patterns.
    ignore: tuple[str, ...] = ()
    lost_login_after_start: frozenset = frozenset()
    reconnect_loop_words: frozenset = frozenset()


def plan_run(listing: Listing, expected: Sequence[str], incidents: dict,
             silences: dict, now: datetime, policy: PlanPolicy, force: bool) -> Plan:
    """Return what to do with each listed channel.

    Pure: the listing, the previous incidents, each connected channel's silence (from the
    activity source) and the time in; the plan out, as data. `--dry-run` prints it and the
    effects section carries it out.
    """
    problems = list(listing.problems)
    listed = {channel_key(c.id) for c in listing.channels}
    missing = [name for name in expected
               if name not in listed and not is_ignored(name, policy.ignore)]
    for name in missing:
        problems.append((CRITICAL, f"expected channel {quote_untrusted(name, 80)} is missing "
                                   f"from the gateway's list: recreate it in the panel"))
    if not listing.channels and not expected:
        problems.append((UNKNOWN, "the gateway lists no channels at all: it may have lost its "
                                  "sessions; set HEALTHCHECK_EXPECTED_CHANNELS to make this "
                                  "critical"))
    return Plan([ChannelPlan(c, "ignored", "in HEALTHCHECK_IGNORE_CHANNELS: never revived "
                                           "nor alerted") if is_ignored(c.id, policy.ignore)
                 else _plan_channel(c, incidents.get(c.id), silences.get(c.id), now, policy,
                                    force)
                 for c in listing.channels], problems, missing)


def _plan_channel(channel: Channel, incident: Optional[dict], silence: Optional[Silence],
                  now: datetime, policy: PlanPolicy, force: bool) -> ChannelPlan:
    """Decide for one channel from its condition; the gateway's name is never asked."""
    if channel.condition == "unknown":
        return ChannelPlan(channel, "unknown", channel.detail)
    if (channel.status in policy.lost_login_after_start and channel.condition == "stopped"
            and (incident or {}).get("last_kick_outcome") in ("start_session_requested",
                                                              "qr_issued")):
        # Its own start (the last kick) ended stopped again: the login is gone, not stopped.
        channel = dataclasses.replace(channel, condition="needs_person",
                                      detail=f"stopped again after its start-session: "
                                             f"{WPPCONNECT_LOGIN_GONE}")
    loop = policy.reconnect_loop_words
    # A QR incident that ends close (Evolution's QR limit) is not a loop: it stays with a person.
    if (incident and channel.status in loop and channel.condition in ("stopped", "transient")
            and incident.get("reason") in ("down", "stuck")
            and (incident.get("flipping") or (incident.get("last_status") in loop
                                              and incident.get("last_status") != channel.status))):
        return _plan_reconnect_loop(channel, incident, now, policy, force)
    if channel.connected:
        if silence is None:
            return ChannelPlan(channel, "none")
        return ChannelPlan(channel, "restart_silent" if policy.restart_silent
                           else "alert_silent", silence=silence)
    if channel.condition == "transient":
        # Do not fight the gateway's own recovery: leave a starting session alone a while.
        since = _parse_time((incident or {}).get("status_since")) \
            if (incident or {}).get("last_status") == channel.status else None
        waited = (now - since).total_seconds() / 60 if since else 0.0
        in_grace = waited < policy.starting_grace_minutes
        if in_grace and force and policy.revive_transient:
            # --force revives now what can be revived; it never shortens the wait before a
            # person is told: the incident stays quiet until the grace is over.
            return ChannelPlan(channel, "kick", in_grace=True)
        if in_grace:
            left = policy.starting_grace_minutes - waited
            return ChannelPlan(channel, "wait_grace", f"the gateway is starting or reconnecting "
                                                      f"it: left alone for its own recovery "
                                                      f"{left:.0f} more min "
                                                      f"(HEALTHCHECK_STARTING_GRACE_MINUTES)")
        if not policy.revive_transient:
            return ChannelPlan(channel, "alert_stuck", f"still {channel.status} after "
                                                       f"{waited:.0f} min, and this gateway has "
                                                       f"no safe way to restart a starting "
                                                       f"session: {STUCK_ADVICE}")
        return ChannelPlan(channel, "kick")
    if force:
        return ChannelPlan(channel, "kick")
    due, why = qr_kick_due(incident, channel.status, now, policy.qr_retry_hours,
                           needs_person=channel.condition == "needs_person")
    if not due and (incident or {}).get("last_kick_outcome") == "restart_gateway":
        return ChannelPlan(channel, "wait_restart", "not connected this run: the gateway's "
                                                    "process must be restarted to load it; "
                                                    + why[why.index("next kick"):])
    return ChannelPlan(channel, "kick" if due else "wait_qr", why)


#: What a person checks for a channel that keeps dropping and coming back.
FLAP_ADVICE = ("the phone behind it (its network, a battery saver, WhatsApp open elsewhere) "
               "and the gateway's log around the drops")
def _plan_reconnect_loop(channel: Channel, incident: dict, now: datetime, policy: PlanPolicy,
                         force: bool) -> ChannelPlan:
    """Plan for a session the gateway's own reconnect loop flips between two words.

    Each run catches one word or the other, so the word's own grace would restart at every
    flip and a run that catches the stopped word would revive it: the loop is one transient
    incident instead, whose grace counts from its first sighting (the incident's start).
    """
    since = _parse_time(incident.get("since"))
    waited = (now - since).total_seconds() / 60 if since else 0.0
    words = " and ".join(sorted(policy.reconnect_loop_words))
    if waited < policy.starting_grace_minutes:
        if force:
            return ChannelPlan(channel, "kick")
        left = policy.starting_grace_minutes - waited
        return ChannelPlan(channel, "wait_loop", f"it flips between {words}: the gateway's own "
                                                 f"reconnect loop, left alone {left:.0f} more "
                                                 f"min from its first sighting "
                                                 f"(HEALTHCHECK_STARTING_GRACE_MINUTES)")
    last_kick = _parse_time(incident.get("last_kick_at"))
    stuck = f"still flipping between {words} after {waited:.0f} min: {LOOP_ADVICE}"
    if (incident.get("reason") == "stuck" and last_kick is not None and not force
            and now < last_kick + timedelta(hours=policy.qr_retry_hours)):
        return ChannelPlan(channel, "alert_loop", f"{stuck}; revived at "
                                                  f"{last_kick.strftime('%Y-%m-%d %H:%M')}, "
                                                  f"not again before "
                                                  f"HEALTHCHECK_QR_RETRY_HOURS")
    return ChannelPlan(channel, "revive_loop", stuck)


#: What a person does with an instance whose own reconnect never connects (Evolution).
LOOP_ADVICE = ("its own reconnect never connects (a dead connection); revived once past its "
               "grace; check the phone's link and restart the Evolution process")

#: What a person does with a session a gateway keeps starting (WPPConnect's INITIALIZING).
STUCK_ADVICE = ("restart the gateway server process (its sessions start again from their "
                "stored logins) or end that session's browser on the server; the watchdog "
                "never closes a session that is starting")


@dataclass(frozen=True)
class ChannelReport:
    """One channel in the report."""

    id: str
    status: str
    connected: bool
    outcome: Optional[str] = None
    detail: str = ""
    verified: Optional[str] = None  # reconnected | still_down, when the kick was checked
    silence: Optional[Silence] = None
    #: What the plan said: none | kick | restart_silent | alert_silent | wait_qr | wait_grace |
    #: alert_stuck | ignored.
    action: str = "none"
    condition: str = ""  # connected | transient | needs_person | stopped
    in_grace: bool = False  # kicked by --force inside its starting grace

    @property
    def state(self) -> int:
        if self.action == "ignored":
            return OK
        state = OK if self.outcome is None else OUTCOME_STATES[self.outcome]
        # Whatever a revive call answered, a session that needs a person is critical.
        return CRITICAL if self.condition == "needs_person" else state

    @property
    def down_now(self) -> bool:
        """True unless the channel was connected, came back after its kick, or is ignored."""
        return not self.connected and self.verified != "reconnected" \
            and self.action != "ignored"


@dataclass
class Report:
    """What one run found and did: the single source of the output, the log and the JSON."""

    channels: list[ChannelReport] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: Lines worth logging that do not change the state: recoveries, deliveries, state-file news.
    notes: list[tuple[int, str]] = field(default_factory=list)
    missing_expected: list[str] = field(default_factory=list)
    error: Optional[str] = None
    error_state: int = OK
    gateway_failed: bool = False
    dry_run: bool = False
    incidents: dict = field(default_factory=dict)  # channel ids, GATEWAY_KEY, ACTIVITY_KEY
    alerts: list[dict] = field(default_factory=list)
    #: The activity source: None when not configured; else whether it was read this run.
    activity_read: Optional[bool] = None
    activity_error: Optional[str] = None
    #: Seconds the run took, for the performance data; set just before the report is printed.
    elapsed: float = 0.0
    gateway: str = "wrapper"
    #: An unexpected exception's traceback: it goes to the log (the bug report), not stdout.
    traceback: Optional[str] = None

    @property
    def state(self) -> int:
        return worst_state([self.error_state] + [c.state for c in self.channels]
                           + [state for state, _ in self.problems])

    @property
    def worth_logging(self) -> bool:
        return self.state != OK or bool(self.notes)

    def summary(self, limit: int = 0) -> str:
        """One line: the error, or how many channels are down and what came of it.

        With `limit`, channel lists are cut ("... and N more") so that the line fits.
        """
        parts = [self.error] if self.error else []
        down = [c for c in self.channels
                if not c.connected and c.action != "ignored" and c.outcome != "unknown"]
        if down:
            parts.append(_fit(f"{len(down)} of {len(self.channels)} channels not connected: ",
                              [f"{quote_untrusted(c.id, 60)} ({c.outcome}"
                               f"{', ' + c.verified if c.verified else ''})"
                               for c in down[:_fit_cap(limit)]], limit, len(down)))
        unknown = [c for c in self.channels if c.outcome == "unknown"]
        if unknown:
            parts.append(_fit(f"status unknown this run for {len(unknown)}: ",
                              [quote_untrusted(c.id, 60) for c in unknown], limit))
        silent = [c for c in self.channels if c.outcome == "silent"]
        if silent:
            parts.append(_fit(f"{len(silent)} connected but silent (no inbound message for too "
                              f"long): ", [quote_untrusted(c.id, 60)
                                           for c in silent[:_fit_cap(limit)]],
                              limit, len(silent)))
        problems = [text for state, text in self.problems if state > OK]
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            parts.append(problems[0] + more)
        if not parts:
            ignored = sum(c.action == "ignored" for c in self.channels)
            parts.append(f"{len(self.channels) - ignored} channels connected"
                         + (f", {ignored} ignored" if ignored else ""))
        return "; ".join(parts)

    def status_line(self) -> str:
        """The first line for a monitoring system: at most 200 characters, then the perfdata."""
        head = f"WHATSAPP SESSIONS {STATE_NAMES[self.state]} - "
        text = head + self.summary(MAX_STATUS_LINE_CHARS - len(head))
        if len(text) > MAX_STATUS_LINE_CHARS:
            text = text[:MAX_STATUS_LINE_CHARS - 4].rstrip() + " ..."
        return f"{text.replace('|', '/')} | {self.perfdata()}"

    def perfdata(self) -> str:
        """Counts for this run in the monitoring-plugin format, always all, in a fixed order."""
        kicked = [c for c in self.channels if c.outcome in KICK_OUTCOMES]
        watched = [c for c in self.channels if c.action != "ignored"]
        counts = (("channels", len(self.channels)),
                  ("connected", sum(c.connected for c in watched)),
                  ("not_connected", sum(not c.connected for c in watched)),
                  ("kicked", len(kicked)),
                  ("reconnected", sum(c.verified == "reconnected" for c in self.channels)),
                  ("qr_issued", sum(c.outcome == "qr_issued" for c in self.channels)),
                  ("failed", sum(c.outcome == "failed" for c in self.channels)),
                  ("missing", len(self.missing_expected)))
        silent = sum(c.outcome == "silent" for c in self.channels)
        # The plugin guidelines' U (undetermined): with no listing, 0 channels would be a lie;
        # the calls (kicked ... failed) were counted, and none was made.
        unlisted = {"channels", "connected", "not_connected", "missing"} \
            if self.gateway_failed else set()
        fields = [f"{label}={'U' if label in unlisted else value};;;0"
                  for label, value in counts]
        fields.append(f"time={self.elapsed:.3f}s;;;0")
        silence_unread = self.gateway_failed or self.activity_read is False
        fields.append(f"silent={'U' if silence_unread else silent};;;0")
        # Appended after the others: a label's position never changes once it exists.
        ignored = len(self.channels) - len(watched)
        fields.append(f"ignored={'U' if self.gateway_failed else ignored};;;0")
        return " ".join(fields)

    def lines(self) -> list[tuple[int, str]]:
        """Return the report as (state, text) lines: the summary, then one per event."""
        out = [(self.state, f"WHATSAPP SESSIONS {STATE_NAMES[self.state]} - {self.summary()}")]
        down = [c for c in self.channels if c.outcome]
        for channel in down[:MAX_CHANNEL_LINES]:
            status = quote_untrusted(channel.status or "(none)", 40)
            verified = f", {channel.verified}" if channel.verified else ""
            out.append((channel.state, f"channel {quote_untrusted(channel.id, 80)}: status "
                                       f"{status}, {channel.outcome}{verified}: {channel.detail}"))
        if len(down) > MAX_CHANNEL_LINES:
            out.append((worst_state(c.state for c in down[MAX_CHANNEL_LINES:]),
                        f"... and {len(down) - MAX_CHANNEL_LINES} more channels need attention "
                        f"(see --json)"))
        out += self.problems[:MAX_PROBLEM_LINES]
        if len(self.problems) > MAX_PROBLEM_LINES:
            out.append((worst_state(s for s, _ in self.problems[MAX_PROBLEM_LINES:]),
                        f"... and {len(self.problems) - MAX_PROBLEM_LINES} more problems"))
        out += self.notes[:MAX_NOTE_LINES]
        if len(self.notes) > MAX_NOTE_LINES:
            out.append((worst_state(s for s, _ in self.notes[MAX_NOTE_LINES:]),
                        f"... and {len(self.notes) - MAX_NOTE_LINES} more notes (see --json)"))
        return out

    def to_json(self) -> dict:
        return {
            "state": STATE_NAMES[self.state],
            "exit_code": self.state,
            "dry_run": self.dry_run,
            "error": self.error,
            "summary": self.summary(),
            "gateway": self.gateway,
            "channels": [{"id": c.id, "status": c.status, "connected": c.connected,
                          "gateway_status": c.status, "condition": c.condition or None,
                          "action": c.action, "outcome": c.outcome, "verified": c.verified,
                          "detail": c.detail or None,
                          "last_inbound_at": _iso(c.silence.last_inbound) if c.silence else None,
                          "expected_inbound": round(c.silence.expected, 1) if c.silence
                          else None,
                          "incident": self.incidents.get(c.id)} for c in self.channels],
            "gateway_incident": self.incidents.get(GATEWAY_KEY),
            "activity": None if self.activity_read is None else {
                "read": self.activity_read, "error": self.activity_error,
                "incident": self.incidents.get(ACTIVITY_KEY)},
            "problems": [{"state": STATE_NAMES[s], "message": m} for s, m in self.problems],
            "notes": [{"state": STATE_NAMES[s], "message": m} for s, m in self.notes],
            "alerts": self.alerts,
        }


#: Outcomes that mean a reconnect call was made.
KICK_OUTCOMES = frozenset({"reconnect_requested", "already_connected", "starting",
                           "start_session_requested", "qr_issued", "failed", "restart_gateway"})
#: Kick outcomes after which only a person can go on: later kicks back off as for a QR.
PERSON_OUTCOMES = frozenset({"qr_issued", "restart_gateway"})


def _fit_cap(limit: int) -> int:
    """How many items `_fit` can ever show: only those are worth quoting (of 200,000)."""
    return limit // 2 + 1 if limit else 11


def _fit(head: str, items: list[str], limit: int, total: Optional[int] = None) -> str:
    """Return head + items joined, cut with "and N more" to stay within `limit` (0: 10 items).

    `items` may be the first few of `total`.
    """
    total = len(items) if total is None else total
    if not limit:
        more = f" and {total - 10} more" if total > 10 else ""
        return head + ", ".join(items[:10]) + more
    text = head
    for index, item in enumerate(items):
        left = total - index - 1
        candidate = text + (", " if index else "") + item
        if index and len(candidate) + (len(f" and {left} more") if left else 0) > limit:
            return text + f" and {total - index} more"
        text = candidate
    return text + (f" and {total - len(items)} more" if total > len(items) else "")


def _label(value: str) -> str:
    """Return a label value escaped as the Prometheus text format requires."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def series_names(ids: Sequence[str]) -> dict[str, str]:
    """Return each channel id as its metrics label: cleaned, and never the same as another's.

    Cleaning turns invisible characters into "?", so "abc<U+200B>" and "abc<U+200C>" both come
    out "abc?", and node_exporter would drop one of the two series on every scrape. Those are
    told apart by a digest of the raw id ("abc?~1a2b3c4d"); an id that cleaning leaves as it is
    keeps its name, so a gateway cannot take another channel's name by listing it.
    """
    import hashlib
    cleaned = {raw: quote_untrusted(raw, MAX_CHANNEL_ID_CHARS) for raw in ids}
    uses: dict[str, int] = {}
    for name in cleaned.values():
        uses[name] = uses.get(name, 0) + 1
    names = {raw: name for raw, name in cleaned.items() if uses[name] == 1 or name == raw}
    taken = set(names.values())
    for raw in sorted(raw for raw in cleaned if raw not in names):
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
        # Longer digests, then a counter: an id listed to look like a digested name cannot
        # make two series the same either.
        candidates = [f"{cleaned[raw]}~{digest[:width]}" for width in (8, 16, 64)]
        name = next((c for c in candidates if c not in taken), "")
        number = 2
        while not name or name in taken:
            name, number = f"{candidates[-1]}~{number}", number + 1
        names[raw] = name
        taken.add(name)
    return names


def describe_told_apart(names: dict[str, str]) -> Optional[str]:
    """Say which channel ids came out the same once cleaned, and what their series are called."""
    told = sorted(name for raw, name in names.items()
                  if name != quote_untrusted(raw, MAX_CHANNEL_ID_CHARS))
    if not told:
        return None
    return _fit(f"{_plural(len(told), 'channel id')} differ from another only by invisible "
                f"characters; their metrics series are told apart by a digest of the raw id: ",
                told, 0)


#: Channels whose last known series are kept in the state for a run that cannot list them;
#: the down ones first. About 100 bytes each.
MAX_REMEMBERED_CHANNELS = 5000


def remembered_channels(previous, report: Report, now: datetime) -> dict:
    """Return each channel's last known gauges ({id: {up, silent, status, seen_at}}).

    Pure. A run that listed the channels replaces them; a run that could not list them (the
    gateway failed, or listed none) keeps the previous ones, so their series outlive it.
    """
    if not report.channels:
        # Checked as the state may have been edited by hand: each value goes into the file.
        return {key: value for key, value in previous.items()
                if isinstance(value, dict) and value.get("up") in (0, 1)
                and value.get("silent") in (0, 1) and isinstance(value.get("status"), str)
                and all(type(value.get(k)) is int for k in ("up", "silent", "seen_at"))} \
            if isinstance(previous, dict) else {}
    ordered = sorted(report.channels, key=lambda c: not c.down_now)
    return {c.id: {"up": 0 if c.down_now else 1, "silent": int(c.outcome == "silent"),
                   "status": c.status or "(none)", "seen_at": round(now.timestamp())}
            for c in ordered[:MAX_REMEMBERED_CHANNELS]}


def metrics_text(report: Report, incidents: dict, now: datetime,
                 remembered: Optional[dict] = None,
                 max_channels: int = DEFAULT_METRICS_MAX_CHANNELS) -> str:
    """Return this run's metrics in the Prometheus text format (node_exporter's textfile).

    Pure. Channel gauges reflect the channels as this run left them: a kick verified
    `reconnected` counts as up. When this run could not list them, they are the last known
    values (`remembered`, from remembered_channels): a series that vanished would clear a
    firing alert and restart its `for:` wait. At most `max_channels` channels get their own
    series, those that need attention first; the totals count them all.
    """
    out = []

    def family(name: str, kind: str, text: str, samples) -> None:
        out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{labels} {value}\n" for labels, value in samples)

    def channel(channel_id: str) -> str:
        return f'{{channel="{_label(names[channel_id])}"}}'

    if report.channels:
        seen = round(now.timestamp())  # as remembered_channels keeps it
        gauges = [(c.id, 0 if c.down_now else 1, int(c.outcome == "silent"),
                   c.status or "(none)", seen) for c in report.channels]
    else:
        gauges = [(key, value["up"], value["silent"], value["status"], value["seen_at"])
                  for key, value in (remembered or {}).items()]
    # Prometheus and node_exporter slow down with hundreds of thousands of series: those that
    # need attention get theirs first.
    shown = sorted(gauges, key=lambda g: not (g[1] == 0 or g[2] == 1))[:max(max_channels, 0)]
    omitted = len(gauges) - len(shown)
    if omitted:
        out.append(f"# {omitted} of {len(gauges)} channels have no series of their own "
                   f"(HEALTHCHECK_METRICS_MAX_CHANNELS={max_channels}); those not connected "
                   f"come first, the totals count them all\n")
    names = series_names([key for key, _, _, _, _ in shown])
    # HEALTHCHECK_IGNORE_CHANNELS: stopped on purpose, so no "down" series for an alert rule.
    ignored = {c.id for c in report.channels if c.action == "ignored"}
    family("whatsapp_session_up", "gauge", "1 when the channel is connected, else 0.",
           [(channel(key), up) for key, up, _, _, _ in shown if key not in ignored])
    family("whatsapp_session_status", "gauge", "The status the gateway lists for the channel.",
           [(f'{channel(key)[:-1]},status="{_label(quote_untrusted(status, 40))}"}}', 1)
            for key, _, _, status, _ in shown])
    family("whatsapp_session_silent", "gauge", "1 when a connected channel has gone silent "
           "(no inbound message for too long).",
           [(channel(key), silent) for key, _, silent, _, _ in shown])
    family("whatsapp_session_last_seen_timestamp_seconds", "gauge",
           "When the gateway last listed the channel (the other series are as of then).",
           [(channel(key), seen_at) for key, _, _, _, seen_at in shown])
    since = []
    for key, _, _, _, _ in shown:
        started = _parse_time((incidents.get(key) or {}).get("since"))
        if started is not None:
            since.append((channel(key), f"{started.timestamp():.0f}"))
    family("whatsapp_session_down_since_timestamp_seconds", "gauge",
           "When the channel's open incident began (down, QR, or silent).", since)
    family("whatsapp_gateway_up", "gauge", "1 when the gateway answered the channel list.",
           [("", 0 if report.gateway_failed else 1)])
    family("whatsapp_healthcheck_last_run_timestamp_seconds", "gauge",
           "When the last run ended.", [("", f"{now.timestamp():.0f}")])
    family("whatsapp_healthcheck_duration_seconds", "gauge", "How long the last run took.",
           [("", f"{report.elapsed:.3f}")])
    family("whatsapp_healthcheck_exit_status", "gauge",
           "The last run's exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
           [("", report.state)])
    outcomes = sorted(KICK_OUTCOMES | {"qr_pending", "would_reconnect"})
    family("whatsapp_healthcheck_kicks", "gauge", "Reconnect calls in the last run, by outcome.",
           [(f'{{outcome="{o}"}}', sum(c.outcome == o for c in report.channels))
            for o in outcomes])
    family("whatsapp_healthcheck_channels", "gauge", "Channels listed by the last run, by "
           "state; counts every channel, with or without a series of its own.",
           [('{state="listed"}', len(report.channels)),
            ('{state="connected"}', sum(not c.down_now for c in report.channels)),
            ('{state="not_connected"}', sum(c.down_now for c in report.channels)),
            ('{state="silent"}', sum(c.outcome == "silent" for c in report.channels))])
    family("whatsapp_healthcheck_channels_omitted", "gauge", "Channels left without a series "
           "of their own by HEALTHCHECK_METRICS_MAX_CHANNELS.", [("", omitted)])
    return "".join(out)


#: How bad each state is when several are combined, the monitoring-plugins order
#: (max_state_alt): a finding outranks "could not tell", so a failing side source never hides
#: that a person must act. The exit codes' numeric order (UNKNOWN = 3) is not this order.
STATE_SEVERITY = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}


def worst_state(states) -> int:
    """Return the combined state: CRITICAL > WARNING > UNKNOWN > OK (OK when there is none)."""
    return max(states, key=STATE_SEVERITY.__getitem__, default=OK)


def _iso(epoch: float) -> str:
    """Return epoch seconds as local time with its offset, like the log's timestamps."""
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone().isoformat(timespec="seconds")


#: What a person does about a channel that is connected but receives nothing.
SILENT_ADVICE = ("Check that the phone is online and WhatsApp is still linked, then restart "
                 "the session in the gateway")


def describe_silence(silence: Silence, now: datetime) -> str:
    """Say since when a connected channel has been silent and what a person should do."""
    last = datetime.fromtimestamp(silence.last_inbound, timezone.utc).astimezone()
    normally = (f"it would normally have had about {silence.expected:.0f} by now"
                if silence.rule == "history" or silence.expected >= 1
                else "its ceiling (HEALTHCHECK_SILENT_HOURS) has passed")
    return (f"listed as connected but no inbound message for {_duration(last, now)} (last at "
            f"{last.isoformat(timespec='seconds')}); {normally}. {SILENT_ADVICE}")


#: The gateway's own incident is kept under this key, beside the channels'; and the activity
#: source's. Channel ids are strings of any characters, so no string is safe from a channel named
#: after it: these keys are not strings. The state file keeps them in a section of their own.
GATEWAY_KEY = ("watchdog", "gateway")
ACTIVITY_KEY = ("watchdog", "activity")
#: Their names in the state file's "watchdog_incidents" section.
WATCHDOG_INCIDENTS = {"gateway": GATEWAY_KEY, "activity": ACTIVITY_KEY}
#: Where a state file written before that section existed kept them, among the channels.
LEGACY_WATCHDOG_KEYS = {"*gateway*": GATEWAY_KEY, "*activity*": ACTIVITY_KEY}


@dataclass(frozen=True)
class AlertPolicy:
    """When an incident reaches a person."""

    alert_after: int
    repeat_hours: float


def _count(value) -> int:
    """Return a count kept in the state file, 0 when it is not one (a hand-edited file)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _parse_time(text) -> Optional[datetime]:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else None


def _duration(start: Optional[datetime], end: datetime) -> str:
    """Return a short human duration: 45 min, 3 h 10 min, 2 d 4 h."""
    if start is None:
        return "an unknown time"
    minutes = max(int((end - start).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def incident_start(incident: dict) -> Optional[datetime]:
    """Return when the trouble began: a silence began at the last inbound message, before the
    run that saw it (which may be hours later)."""
    if incident.get("reason") == "silent":
        last_inbound = _parse_time(incident.get("last_inbound_at"))
        if last_inbound is not None:
            return last_inbound
    return _parse_time(incident.get("since"))


def plan_incidents(previous: dict, report: Report, now: datetime,
                   policy: AlertPolicy) -> tuple[dict, list[dict], list[tuple[int, str]]]:
    """Return the new incident table, the alert items due now and the lines to log.

    Pure: the previous table, this run's report and the time in; nothing is read or written.
    An incident opens when a channel (or the gateway) is first seen down and closes when it is
    seen well again. It reaches a person at once for a QR, after `alert_after` runs otherwise,
    again every `repeat_hours`, and once more when it ends.
    """
    incidents = {k: dict(v) for k, v in previous.items() if isinstance(v, dict)}
    items: list[dict] = []
    notes: list[tuple[int, str]] = []
    stamp = now.isoformat(timespec="seconds")

    def open_or_continue(key: str, status: str, outcome: Optional[str], kicked: bool,
                         urgent: bool, reason: str, quiet: bool = False,
                         needs_person: bool = False, **extra) -> None:
        incident = incidents.get(key) or {"since": stamp, "runs_down": 0, "kicks": 0,
                                          "alerted_at": None, "last_alert_at": None}
        incident["runs_down"] = _count(incident.get("runs_down")) + 1
        if incident.get("last_status") != status or not incident.get("status_since"):
            incident["status_since"] = stamp  # a starting session's grace counts from here
        if kicked:
            incident["kicks"] = _count(incident.get("kicks")) + 1
            if (outcome in PERSON_OUTCOMES or needs_person) \
                    and incident.get("qr_status") != status:
                # The backoff for what only a person can finish starts here.
                incident.update(qr_since_run=incident["runs_down"], qr_status=status)
            incident.update(last_kick_outcome=outcome, last_kick_run=incident["runs_down"],
                            last_kick_at=stamp)
        incident.update(last_status=status, last_outcome=outcome, reason=reason, **extra)
        incidents[key] = incident
        if quiet:
            return  # inside a grace: reported, not alerted
        last_alert = (_parse_time(incident.get("last_alert_at"))
                      or _parse_time(incident.get("alerted_at")))
        if not incident.get("alerted_at"):
            if urgent or incident["runs_down"] >= policy.alert_after:
                items.append(_alert_item("alert", key, incident))
                incident["alerted_at"] = incident["last_alert_at"] = stamp
        elif last_alert is None:  # a hand-edited time: restart the reminder clock, no flood
            incident["last_alert_at"] = stamp
        elif (policy.repeat_hours > 0
              and (now - last_alert).total_seconds() >= policy.repeat_hours * 3600):
            items.append(_alert_item("reminder", key, incident))
            incident["last_alert_at"] = stamp

    def close(key: str, how: str) -> None:
        incident = incidents.pop(key, None)
        if incident is None:
            return
        since = incident_start(incident)
        kicks = _count(incident.get("kicks"))
        name = {GATEWAY_KEY: "the gateway", ACTIVITY_KEY: "the activity source"}.get(
            key, f"channel {quote_untrusted(key, 80)}")
        notes.append((OK, f"{name} {how} after {_duration(since, now)} "
                          f"({_plural(kicks, 'kick')}, "
                          f"{_plural(_count(incident.get('runs_down')), 'run')} down)"))
        if incident.get("alerted_at"):
            items.append(_alert_item("resolved", key, incident, now=now, how=how))

    if report.gateway_failed:
        open_or_continue(GATEWAY_KEY, "unreachable", None, False, False,
                         quote_untrusted(report.error or "the gateway failed"))
        return incidents, items, notes  # the channels' state is unknown this run
    close(GATEWAY_KEY, "answers again")
    if report.error:  # the run was stopped before the gateway was asked (e.g. the lock)
        return incidents, items, notes
    if report.activity_read is False:
        open_or_continue(ACTIVITY_KEY, "failing", None, False, False,
                         quote_untrusted(report.activity_error or "the activity source failed"))
    else:
        close(ACTIVITY_KEY, "reads again")
    listed = {ACTIVITY_KEY}
    for channel in report.channels:
        listed.add(channel.id)
        if channel.action == "ignored":
            close(channel.id, "is ignored now (HEALTHCHECK_IGNORE_CHANNELS); incident closed")
            continue
        if channel.outcome == "unknown":
            continue  # its read failed: neither down nor recovered, the incident stays as is
        if channel.down_now:
            restart = channel.outcome in ("restart_gateway", "restart_pending")
            person = channel.condition == "needs_person" or restart
            qr = channel.outcome in ("qr_issued", "qr_pending") or person
            reason = "stuck" if channel.outcome == "stuck" else "restart" if restart \
                else "qr" if qr else "down"
            loop = channel.action in ("wait_loop", "alert_loop", "revive_loop")
            open_or_continue(channel.id, channel.status or "(none)", channel.outcome,
                             kicked=channel.outcome in KICK_OUTCOMES
                             or channel.action == "revive_loop",
                             urgent=channel.outcome in ("qr_issued", "stuck") or person,
                             reason=reason, quiet=channel.outcome == "in_grace"
                             or (channel.in_grace and not qr),
                             needs_person=person, **({"flipping": True} if loop else {}))
        elif channel.silence is not None:
            # Connected is not alive: a person must look at the phone now, not in 30 min.
            open_or_continue(channel.id, channel.status, channel.outcome,
                             kicked=channel.outcome in KICK_OUTCOMES,
                             urgent=True, reason="silent",
                             last_inbound_at=_iso(channel.silence.last_inbound),
                             expected_inbound=round(channel.silence.expected, 1))
        elif (channel.id in incidents and incidents[channel.id].get("reason") == "silent"
              and report.activity_read is False):
            continue  # the source failed: a silence cannot be seen to end this run
        elif channel.id in incidents:
            if incidents[channel.id].get("reason") == "silent":
                close(channel.id, "receives messages again")
                continue
            if channel.verified == "reconnected":  # down at the start of this run, too
                incident = incidents[channel.id]
                incident["kicks"] = _count(incident.get("kicks")) + 1
                incident["runs_down"] = _count(incident.get("runs_down")) + 1
            close(channel.id, "reconnected" if channel.verified else "recovered")
        elif channel.verified == "reconnected":
            notes.append((OK, f"channel {quote_untrusted(channel.id, 80)} reconnected after "
                              f"its kick"))
    for name in report.missing_expected:
        listed.add(name)
        open_or_continue(name, "missing", None, False, False, "missing")
    for key in [k for k in incidents if k != GATEWAY_KEY and k not in listed]:
        if report.channels or report.missing_expected:
            close(key, "is no longer listed; incident closed")
    channel_keys = [k for k in incidents if k not in (GATEWAY_KEY, ACTIVITY_KEY)]
    if len(channel_keys) > MAX_INCIDENTS:
        # Keep the oldest: a flood of new ids must not push out the incidents people know of.
        dropped = sorted(channel_keys, key=lambda k: str(incidents[k].get("since")))[
            MAX_INCIDENTS:]
        for key in dropped:
            del incidents[key]
        notes.append((WARNING, f"{len(dropped)} channels down are not tracked across runs: over "
                               f"{MAX_INCIDENTS} incidents are open"))
    return incidents, items, notes


def repaired_drops(previous: dict, report: Report, now: datetime) -> dict[str, str]:
    """Return the channels whose drop was repaired in this run, each with when the drop began.

    Pure. A drop is repaired when a channel that was down (not waiting for a person, not
    silent) is connected again: back after this run's revive, or its incident ends now.
    """
    stamp = now.isoformat(timespec="seconds")
    drops = {}
    for channel in report.channels:
        incident = previous.get(channel.id)
        incident = incident if isinstance(incident, dict) else None
        if channel.action == "ignored" or (incident or {}).get("reason", "down") not in (
                "down", "stuck"):
            continue
        if channel.verified == "reconnected" or (channel.connected and incident is not None):
            began = (incident or {}).get("since")
            drops[channel.id] = began if _parse_time(began) else stamp
    return drops


def plan_flaps(previous: dict, drops: dict[str, str], now: datetime,
               threshold: int) -> tuple[dict, list[dict], list[tuple[int, str]]]:
    """Return the drop history to keep, the flapping alerts due now and the lines to log.

    Pure. Each channel keeps when its last `threshold` repaired drops began (so the state stays
    small), a count and the first of them; `threshold` drops within FLAP_WINDOW make it
    flapping: one alert, a reminder at most once a FLAP_WINDOW while the drops go on, and a
    resolved message after a FLAP_WINDOW without one. A channel that is not flapping and has
    had no drop for a FLAP_WINDOW is forgotten.
    """
    if threshold <= 0:
        return {}, [], []
    stamp = now.isoformat(timespec="seconds")
    flaps: dict[str, dict] = {}
    items: list[dict] = []
    notes: list[tuple[int, str]] = []
    previous = previous if isinstance(previous, dict) else {}
    for key in sorted(set(previous) | set(drops)):
        entry = previous.get(key) if isinstance(previous.get(key), dict) else {}
        kept = entry.get("drops") if isinstance(entry.get("drops"), list) else []
        times = {t for t in kept if _parse_time(t) is not None}
        count = _count(entry.get("count"))
        if key in drops and drops[key] not in times:
            times.add(drops[key])
            count += 1
        ordered = sorted(times, key=_parse_time)[-threshold:]
        if not ordered:
            continue
        recent = [t for t in ordered if now - _parse_time(t) < FLAP_WINDOW]
        first = entry.get("first") if _parse_time(entry.get("first")) else ordered[0]
        new = {"drops": ordered, "count": max(count, len(ordered)), "first": first}
        item = {"subject": "channel", "id": key, "reason": "flapping", "since": first,
                "drops": new["count"], "last_drop_at": ordered[-1]}
        alerted = _parse_time(entry.get("alerted_at"))
        if alerted is not None:
            if not recent:
                items.append({"kind": "resolved", **item})
                notes.append((OK, f"channel {quote_untrusted(key, 80)} stopped dropping: no "
                                  f"drop since {ordered[-1]} ({_plural(new['count'], 'drop')} "
                                  f"since {first})"))
                continue
            last_alert = _parse_time(entry.get("last_alert_at")) or alerted
            new.update(alerted_at=entry["alerted_at"],
                       last_alert_at=last_alert.isoformat(timespec="seconds"))
            if now - last_alert >= FLAP_WINDOW:
                items.append({"kind": "reminder", **item})
                new["last_alert_at"] = stamp
        elif len(recent) >= threshold:
            items.append({"kind": "alert", **item})
            new.update(alerted_at=stamp, last_alert_at=stamp)
        elif not recent:
            continue
        flaps[key] = new
    if len(flaps) > MAX_INCIDENTS:  # a flood of new ids must not push out the alerted ones
        keep = sorted(flaps, key=lambda k: (not flaps[k].get("alerted_at"),
                                            flaps[k]["drops"][-1]))[:MAX_INCIDENTS]
        flaps = {k: flaps[k] for k in sorted(keep)}
    return flaps, items, notes


def count_unfinished_run(incidents: dict, unfinished: str, now: datetime) -> tuple[dict, str]:
    """Return the incidents with a killed run counted as a failed run of the gateway, and why.

    Pure. The killed run is the gateway's failure as far as anyone can tell (a hung gateway is
    what makes a supervisor kill a check): it opens or extends the gateway's incident.
    """
    started = re.search(r"started=(\S+)", unfinished)
    when = started.group(1) if started else "an unknown time"
    why = (f"the previous run (started at {quote_untrusted(when, 40)}) did not finish: it was "
           f"killed from outside (a supervisor's timeout, the OOM killer, a reboot); under "
           f"Nagios or Monit, give the script -t SECONDS below their timeout")
    incidents = {k: dict(v) for k, v in incidents.items() if isinstance(v, dict)}
    incident = incidents.setdefault(GATEWAY_KEY, {
        "since": now.isoformat(timespec="seconds"), "runs_down": 0, "kicks": 0,
        "alerted_at": None, "last_alert_at": None, "last_status": "unfinished run",
        "last_outcome": None, "reason": why})
    incident["runs_down"] = _count(incident.get("runs_down")) + 1
    return incidents, why


def _alert_item(kind: str, key: str, incident: dict, now: Optional[datetime] = None,
                how: str = "") -> dict:
    item = {"kind": kind, "subject": "gateway" if key == GATEWAY_KEY else "channel",
            "id": None if key == GATEWAY_KEY else key, "reason": incident.get("reason"),
            "since": incident.get("since"), "runs_down": incident.get("runs_down"),
            "kicks": incident.get("kicks"), "status": incident.get("last_status"),
            "outcome": incident.get("last_outcome")}
    if key == ACTIVITY_KEY:
        item.update(subject="activity", id=None)
    if incident.get("flipping"):
        item["flipping"] = True
    if incident.get("reason") == "silent":
        item.update(last_inbound_at=incident.get("last_inbound_at"),
                    expected_inbound=incident.get("expected_inbound"))
    if now is not None:
        item["lasted"] = _duration(incident_start(incident), now)
        item["how"] = how
    return item


def compose_alert(items: list[dict], state: int, host: str, run_id: str, now: datetime) -> dict:
    """Return one message for all the alert items of a run: text for people, fields for tools."""
    def describe(item: dict) -> str:
        since = item.get("since") or "?"
        counts = (f"since {since}, {_plural(_count(item.get('runs_down')), 'run')}, "
                  f"{_plural(_count(item.get('kicks')), 'kick')}")
        if item["subject"] == "gateway":
            if item["kind"] == "resolved":
                return f"the gateway answers again (was down {item.get('lasted')})"
            return f"the gateway is failing ({counts}): {item.get('reason')}"
        if item["subject"] == "activity":
            if item["kind"] == "resolved":
                return f"the activity source reads again (was failing {item.get('lasted')})"
            return (f"the activity source keeps failing, so silent channels cannot be seen "
                    f"({counts}): {item.get('reason')}")
        name = quote_untrusted(item["id"], 80)
        if item.get("reason") == "flapping":
            if item["kind"] == "resolved":
                return (f"{name}: no drop for 24 h, it stopped dropping "
                        f"({_plural(_count(item.get('drops')), 'drop')} since {since})")
            return (f"{name}: keeps dropping: {_count(item.get('drops'))} times since {since}, "
                    f"last at {item.get('last_drop_at') or '?'}; each drop was repaired, but "
                    f"something keeps cutting it: {FLAP_ADVICE}")
        if item["kind"] == "resolved":
            return f"{name}: {item.get('how')} (was down {item.get('lasted')}, " \
                   f"{_plural(_count(item.get('kicks')), 'kick')})"
        if item.get("reason") == "qr":
            return f"{name}: a person must scan a new QR code in the panel now ({counts})"
        if item.get("reason") == "missing":
            return f"{name}: missing from the gateway's list ({counts})"
        if item.get("reason") == "restart":
            return (f"{name}: the gateway's process has not loaded it, so no connect can revive "
                    f"it: restart the Evolution process ({counts})")
        if item.get("reason") == "stuck" and item.get("flipping"):
            return (f"{name}: flips between close and connecting: {LOOP_ADVICE} "
                    f"({counts})")
        if item.get("reason") == "stuck":
            return (f"{name}: stuck {quote_untrusted(item.get('status') or '?', 40)}: the "
                    f"gateway's own start never finished; {STUCK_ADVICE} ({counts})")
        if item.get("reason") == "silent":
            expected = item.get("expected_inbound")
            normally = (f", where it would normally have had about {expected:.0f}"
                        if isinstance(expected, (int, float)) and expected >= 1 else "")
            return (f"{name}: connected but silent: no inbound message since "
                    f"{item.get('last_inbound_at') or '?'}{normally}. {SILENT_ADVICE} "
                    f"(since {since}, {_plural(_count(item.get('runs_down')), 'run')})")
        return (f"{name}: still not connected, status "
                f"{quote_untrusted(item.get('status') or '(none)', 40)}, last kick "
                f"{item.get('outcome')} ({counts})")

    open_items = [i for i in items if i["kind"] != "resolved"]
    resolved = [i for i in items if i["kind"] == "resolved"]
    # An open item is at least a warning, also in a run that is OK (a flapping channel).
    level = STATE_NAMES[max(state, WARNING)] if open_items else "RESOLVED"
    total = len(items)
    # Bounded whatever the gateway sends: at most MAX_ALERT_ITEMS described, 64 KB in all.
    open_items, resolved = open_items[:MAX_ALERT_ITEMS], resolved[:MAX_ALERT_ITEMS // 4]
    while True:
        # The line breaks are the message's own layout; everything put into a line is cleaned
        # there, so no id, status or reason can break a line and forge another one.
        lines = [f"WhatsApp sessions {level} on {clean_text(host)}:"]
        lines += [f"- {clean_text(describe(i))}{' (reminder)' if i['kind'] == 'reminder' else ''}"
                  for i in open_items]
        if resolved:
            lines.append("Resolved:")
            lines += [f"- {clean_text(describe(i))}" for i in resolved]
        shown = open_items + resolved
        if len(shown) < total:
            lines.append(f"... and {total - len(shown)} more (see the log)")
        message = {"text": "\n".join(lines), "state": level, "host": host, "run_id": run_id,
                   "sent_at": now.isoformat(timespec="seconds"), "items": shown,
                   "more_items": total - len(shown)}
        if len(json.dumps(message)) <= MAX_ALERT_BYTES or len(shown) <= 1:
            return message
        open_items, resolved = open_items[:len(open_items) // 2], resolved[:len(resolved) // 2]


###############################################################################
# Effects #####################################################################
###############################################################################


@dataclass
class RunContext:
    """What one run knows about itself: ids, time limits, flags, and what it has done so far."""

    run_id: str
    started: float  # time.monotonic() at start
    hard_end: float
    budget_end: float  # the gateway calls stop here; the rest is kept for alerts, state, pings
    dry_run: bool = False
    force: bool = False
    #: healthchecks.io run id: the same on /start and on the end ping, so runs can be told apart.
    ping_rid: str = ""
    #: Channels whose reconnect call was made, in the order they finished (read on SIGTERM).
    kicked: list[str] = field(default_factory=list)
    #: "run=... started=..." of a previous run that never finished (killed from outside).
    unfinished: str = ""
    lock_problem: Optional[str] = None
    #: Print every setup warning (--verbose, --dry-run), not only the ones new since last run.
    all_warnings: bool = False


def revive_channel(gateway, channel: Channel, restart: bool = False) -> Kick:
    """Ask the gateway to revive one channel; never raises for a gateway failure."""
    try:
        return gateway.revive(channel, restart)
    except HealthcheckError as exc:
        return Kick("failed", str(exc))


def run_bounded(tasks: Sequence[Callable[[], object]], workers: int,
                budget_end: float) -> list[Optional[object]]:
    """Run tasks on at most `workers` threads; return results in order, None where time ran out."""
    results: list[Optional[object]] = [None] * len(tasks)
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(tasks)):
        pending.put(index)
    finished: queue.Queue[tuple[int, object, Optional[BaseException]]] = queue.Queue()

    def work():
        while time.monotonic() < budget_end:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((index, tasks[index](), None))
            except BaseException as exc:  # noqa: BLE001 - a bug: re-raised in the main thread
                finished.put((index, None, exc))

    # Daemon threads: a call stuck past the deadline must not keep the process alive.
    for number in range(min(workers, len(tasks))):
        threading.Thread(target=work, name=f"kick-{number}", daemon=True).start()
    for _ in range(len(tasks)):
        try:
            index, result, bug = finished.get(timeout=max(budget_end - time.monotonic(), 0))
        except queue.Empty:
            break
        if bug is not None:
            raise bug
        results[index] = result
    return results


def kick_all(gateway, jobs: list[tuple[Channel, bool]], workers: int,
             budget_end: float, kicked: list[str]) -> list[Kick]:
    """Revive every (channel, restart) job, at most `workers` at once; in the jobs' order.

    Each channel is added to `kicked` as its call ends, so a run stopped by a signal can say
    which reconnect calls were already made. A call the deadline left no time for is
    `not_called`, never counted as a kick; one cut short by it was made, and `failed`.
    """
    started: set[int] = set()

    def kick(index: int, channel: Channel, restart: bool) -> Kick:
        started.add(index)
        result = revive_channel(gateway, channel, restart)
        kicked.append(channel.id)
        return result

    tasks = [lambda i=i, c=c, r=r: kick(i, c, r) for i, (c, r) in enumerate(jobs)]
    results = run_bounded(tasks, workers, budget_end)
    return [r if isinstance(r, Kick) else
            Kick("failed", "deadline: the call did not finish within HEALTHCHECK_DEADLINE")
            if i in started else
            Kick("not_called", "deadline: no time left in HEALTHCHECK_DEADLINE for this call; "
                               "it was not made")
            for i, r in enumerate(results)]


def check_gateway(settings: Settings, run: RunContext, state: dict,
                  now: datetime) -> tuple[Report, Optional[dict]]:
    """List, revive and verify, then read the activity, then restart silent channels.

    Returns the report (failures land in it) and the activity history to keep (None when the
    activity source is not configured; the previous history when it could not be read).
    """
    dry_run, budget_end = run.dry_run, run.budget_end
    report = Report(dry_run=dry_run, gateway=settings.gateway)
    gateway = GATEWAYS[settings.gateway](settings, budget_end)
    activity = state.get("activity") if isinstance(state.get("activity"), dict) else {}
    cpu_started = time.process_time()
    try:
        listing = gateway.list_sessions()
    except HealthcheckError as exc:
        report.error, report.error_state, report.gateway_failed = \
            name_settings(str(exc), settings), exc.state, True
        return report, activity if settings.activity else None
    listing_cpu = time.process_time() - cpu_started
    told_apart = describe_told_apart(series_names([c.id for c in listing.channels]))
    if told_apart:
        report.notes.append((WARNING, told_apart))
    policy = PlanPolicy(
        qr_retry_hours=settings.qr_retry_hours,
        starting_grace_minutes=settings.starting_grace_minutes,
        revive_transient=gateway.abilities.revive_transient,
        restart_silent=settings.silent_action == "restart"
        and gateway.abilities.restart_connected, ignore=settings.ignore_channels,
        lost_login_after_start=gateway.abilities.lost_login_after_start,
        reconnect_loop_words=gateway.abilities.reconnect_loop_words)

    def revive(jobs: list[tuple[Channel, bool]]) -> list[tuple[Channel, Kick]]:
        if dry_run:
            return [(c, Kick("would_reconnect", "dry run: no reconnect call made"))
                    for c, _ in jobs]
        return list(zip([c for c, _ in jobs],
                        kick_all(gateway, jobs, settings.workers, kick_end, run.kicked)))

    # The gateway part (revive, verify) comes before the activity read, on the deadline's full
    # budget: a slow or locked activity database must never starve a reconnect. Silences only
    # concern connected channels, so this plan's revivals are the final plan's, less the
    # restarts of silent channels.
    cpu_started = time.process_time()
    plan = plan_run(listing, settings.expected_channels, state["incidents"], {}, now,
                    policy, run.force)
    # What follows the kicks (incidents, report, state, metrics) costs up to twice the CPU time
    # that listing and planning took: seconds for 200,000 channels. Keep that much back, so
    # that the run still ends within the deadline whatever the listing's size.
    kick_end = budget_end - 2 * (listing_cpu + time.process_time() - cpu_started)
    kicks = revive(plan.revivals)
    made = [c for c, k in kicks if k.outcome in KICK_OUTCOMES]
    relisted: dict[str, Channel] = {}
    verified = verify_kicks(gateway, made, settings.verify_seconds, kick_end, report,
                            relisted) if made and not dry_run else {}
    # What a revive came to, by the status read after it; one that the second listing shows
    # asking for a person is reported with its status now, so the QR backoff starts from it.
    asks_person = {}
    for number, (channel, kick) in enumerate(kicks):
        revived = after_revive(kick, relisted.get(channel.id), policy)
        if revived.outcome == "qr_issued" and kick.outcome != "qr_issued":
            asks_person[channel.id] = relisted[channel.id]
        kicks[number] = (channel, revived)
    silences = {}
    if settings.activity:
        try:
            activity = read_activity(settings.activity, activity,
                                     {channel_key(c.id) for c in listing.channels},
                                     now.timestamp(), budget_end, report,
                                     expected=settings.expected_channels)
            report.activity_read = True
        except HealthcheckError as exc:
            report.activity_read, report.activity_error = False, str(exc)
            report.problems.append((UNKNOWN, str(exc)))
        else:
            for channel in listing.channels:
                silence = assess_silence(activity["channels"].get(channel_key(channel.id)),
                                         now.timestamp(),
                                         settings.activity.ceiling_hours(channel.id),
                                         settings.activity.silent_min_minutes)
                if silence:
                    silences[channel.id] = silence
    if silences:
        plan = plan_run(listing, settings.expected_channels, state["incidents"], silences, now,
                        policy, run.force)
        kicks += revive([(c, restart) for c, restart in plan.revivals if restart])
    report.problems[:0] = [(s, name_settings(t, settings)) for s, t in plan.problems]
    report.missing_expected = plan.missing
    outcome = {c.id: Kick(k.outcome, name_settings(k.detail, settings)) for c, k in kicks}
    waiting = {"wait_qr": "qr_pending", "wait_grace": "in_grace", "alert_stuck": "stuck",
               "unknown": "unknown", "wait_restart": "restart_pending",
               "wait_loop": "in_grace", "alert_loop": "stuck"}
    for entry in plan.channels:
        channel = entry.channel
        kick = outcome.get(channel.id)
        if entry.action in waiting:
            kick = Kick(waiting[entry.action], entry.detail)
        elif entry.action == "alert_silent":
            kick = Kick("silent", describe_silence(entry.silence, now))
        elif entry.action == "ignored":
            kick = Kick("ignored", entry.detail)
        elif entry.action == "revive_loop" and kick is not None:
            kick = Kick("stuck", f"{entry.detail}; this run's revive: {kick.outcome}, "
                                 f"{kick.detail}")
        if channel.id in asks_person:
            channel = asks_person[channel.id]
        report.channels.append(ChannelReport(
            channel.id, channel.status, channel.connected,
            kick.outcome if kick else None, kick.detail if kick else channel.detail,
            verified.get(channel.id), entry.silence, entry.action, channel.condition,
            in_grace=entry.in_grace))
    return report, activity if settings.activity else None


def clock_repeats(zone, start: float, end: float) -> list[tuple[float, float]]:
    """Return (turn, length) for each change between start and end that turns the clock back.

    `zone` is a tzinfo, None for this machine's zone. Offsets are compared an hour apart (clock
    changes are months apart), then the change is narrowed down to the second.
    """
    def offset(at: int) -> float:
        moment = datetime.fromtimestamp(at, timezone.utc)
        return (moment.astimezone(zone) if zone else moment.astimezone()).utcoffset() \
            .total_seconds()

    found = []
    at, end = int(start), int(end)
    before = offset(at)
    while at < end:
        step = min(at + 3600, end)
        after = offset(step)
        if after < before:
            low, high = at, step
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            found.append((float(high), before - after))
        at, before = step, after
    return found


def read_activity(source: ActivitySettings, previous: dict, listed: set, now: float,
                  budget_end: float, report: Optional[Report] = None,
                  expected: Sequence[str] = ()) -> dict:
    """Read the inbound messages received since the last run; return the updated history.

    Raises HealthcheckError (UNKNOWN) saying what to check when the source cannot be read;
    rows with times that cannot be trusted are said in `report` (one line each kind).
    SQLAlchemy and the driver are imported here only: a watchdog without an activity source
    needs neither.
    """
    try:
        import sqlalchemy
        from sqlalchemy.pool import NullPool
    except ImportError:
        raise HealthcheckError(f"HEALTHCHECK_ACTIVITY_DB is set but SQLAlchemy is not installed "
                               f"for {sys.executable}: run  "
                               f"{install_hint('-r requirements-activity.txt')}") from None
    limit = min(source.timeout, budget_end - time.monotonic())
    limit_name = "HEALTHCHECK_ACTIVITY_TIMEOUT" if limit == source.timeout else \
        "what was left of HEALTHCHECK_DEADLINE"
    if limit <= 0:
        raise HealthcheckError("activity source not read: no time left in HEALTHCHECK_DEADLINE")
    zone = None
    if source.zone:
        from zoneinfo import ZoneInfo
        zone = ZoneInfo(source.zone)
    notes = report.notes if report is not None else []
    mark = previous.get("since")
    if mark is not None and not (_is_time(mark) and mark <= now + ACTIVITY_AHEAD_TOLERANCE):
        notes.append((WARNING, f"the saved activity reading mark "
                               f"{quote_untrusted(repr(mark), 40)} is not a usable time (an "
                               f"earlier version kept it from a row with a bad time): the "
                               f"history of inbound messages is learned afresh from the last "
                               f"4 weeks"))
        previous, mark = {}, None  # counts kept with a bad mark missed every later row
    since = max(mark if mark is not None else 0, now - ACTIVITY_WINDOW_SECONDS)
    # With naive local times, :since cannot tell the two passes of a repeated hour apart: while
    # one is not read whole, each run reads it again from its start and counts it by number.
    repeats = [(turn, length) for turn, length in
               clock_repeats(zone, since - MAX_REPEAT_SECONDS, now + MAX_REPEAT_SECONDS)
               if turn - length <= now and turn + length > since]
    if repeats:
        since = min(since, min(turn - length for turn, length in repeats) - 1)
    since_local = datetime.fromtimestamp(since, zone or timezone.utc)
    since_local = (since_local if zone else since_local.astimezone()).replace(tzinfo=None,
                                                                              microsecond=0)
    where = "the activity source"

    def events(result):
        for row in result:
            if len(row) != 2:
                raise ActivityRowError(f"the query returned {len(row)} columns; it must return "
                                       f"two: channel, received_at")
            channel, value = row
            at = to_epoch(value, zone)
            if channel is None or at is None:
                continue  # a webhook without a session, a row without a time
            if repeats and _is_time(at):
                local = naive_time(value)
                second = to_epoch(local, zone, fold=1) if local is not None else at
                if second > at:  # the clock showed this time twice
                    at = (at, second)
            if isinstance(channel, bytes):
                channel = channel.decode("utf-8", "replace")
            name = str(channel)
            if len(name) <= MAX_CHANNEL_ID_CHARS:
                yield channel_key(name), at

    def query() -> dict:
        engine = sqlalchemy.create_engine(source.url, poolclass=NullPool,
                                          connect_args=_driver_timeouts(source.url, limit))
        try:
            with engine.connect() as connection:  # a failure here is the connection's
                try:
                    result = connection.execution_options(stream_results=True).execute(
                        sqlalchemy.text(source.query),
                        {"since": since_local, "since_epoch": int(since)})
                    return learn_activity(previous, events(result), now, listed, repeats,
                                          tally, expected)
                except sqlalchemy.exc.DBAPIError as exc:  # SQLite calls bad SQL "operational"
                    raise ActivityRowError(f"the query failed: {_database_error(exc)}") from None
        finally:
            engine.dispose()

    tally: dict = {}
    try:
        history = call_with_timeout(query, limit)
        if tally.get("unusable"):
            notes.append((WARNING, f"{_plural(tally['unusable'], 'activity row')} with an "
                                   f"unusable time skipped (not a finite number, beyond year "
                                   f"9999 or more than a day ahead): they are never counted "
                                   f"nor kept as the reading mark; check the time column of "
                                   f"HEALTHCHECK_ACTIVITY_QUERY (epoch seconds or ms?)"))
        if tally.get("ahead") and report is not None:
            start = datetime.fromtimestamp(now, timezone.utc)
            by = _duration(start, start + timedelta(seconds=tally["ahead_by"]))
            zone_name = source.zone or "this machine's"
            report.problems.append((WARNING, f"{_plural(tally['ahead'], 'activity row')} dated "
                                             f"up to {by} ahead of this machine's clock: check "
                                             f"HEALTHCHECK_ACTIVITY_TZ (the zone of the "
                                             f"database's naive times, now {zone_name}) and "
                                             f"both clocks; those rows count when their time "
                                             f"comes, their channels are not judged silent"))
        return history
    except TimeoutError:
        raise HealthcheckError(f"{where}: the query did not finish within {limit:g}s "
                               f"({limit_name}); check that the database is up and that the "
                               f"time column is indexed") from None
    except ActivityRowError as exc:
        raise HealthcheckError(f"{where}: {exc}; check HEALTHCHECK_ACTIVITY_QUERY") from None
    except ImportError as exc:  # the driver named in the URL
        raise HealthcheckError(f"{where}: the database driver is not installed for "
                               f"{sys.executable} ({quote_untrusted(str(exc), 80)}): run  "
                               f"{install_hint('-r requirements-activity.txt')}") from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise HealthcheckError(f"{where}: HEALTHCHECK_ACTIVITY_DB names a database type or "
                               f"driver SQLAlchemy does not know; use sqlite:///, "
                               f"mysql+pymysql:// or postgresql+psycopg://") from None
    except sqlalchemy.exc.ArgumentError:
        raise HealthcheckError(f"{where}: HEALTHCHECK_ACTIVITY_DB is not a valid database URL"
                               ) from None
    except sqlalchemy.exc.OperationalError as exc:
        raise HealthcheckError(f"{where}: {_database_error(exc)}; check that the database is "
                               f"running and reachable, and its user and password in "
                               f"HEALTHCHECK_ACTIVITY_DB (or DB_* for panel)") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise HealthcheckError(f"{where}: {type(exc).__name__}: "
                               f"{quote_untrusted(str(exc).splitlines()[0] if str(exc) else '')}"
                               f"; check HEALTHCHECK_ACTIVITY_DB and HEALTHCHECK_ACTIVITY_QUERY"
                               ) from None


def _database_error(exc) -> str:
    """Return the driver's own message, one line, without the SQL SQLAlchemy appends."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(a) for a in getattr(original, "args", ()) if a is not None) or \
        str(original)
    return quote_untrusted(f"{type(original).__name__}: {text.strip()}", 160)


def _driver_timeouts(url: str, limit: float) -> dict:
    """Return connect arguments that bound the driver's own waits (the thread bounds the rest)."""
    backend = url.split("://", 1)[0].split("+", 1)[0]
    whole = max(int(limit) + 1, 1)
    if backend == "sqlite":
        return {"timeout": limit}
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": min(whole, 10), "read_timeout": whole}
    if backend == "postgresql":
        return {"connect_timeout": min(whole, 10),
                "options": f"-c statement_timeout={int(limit * 1000)}"}
    return {}


def after_revive(kick: Kick, seen: Optional[Channel], policy: PlanPolicy) -> Kick:
    """Return what a revive came to, given the status read after it (None: not read).

    A revive's own answer can be from before it (WPPConnect's start-session answers the
    previous status): a session that shows a QR, or is stopped again, after its start needs
    a person now, not in 15 minutes.
    """
    if seen is None or kick.outcome in ("qr_issued", "failed"):
        return kick
    if seen.condition == "needs_person":
        return Kick("qr_issued", f"status {quote_untrusted(seen.status, 40)} after the revive: "
                                 f"{seen.detail or 'a person must scan a new QR code'}")
    if (seen.status in policy.lost_login_after_start and seen.condition == "stopped"
            and kick.outcome == "start_session_requested"):
        return Kick("qr_issued", f"stopped again after its start-session: "
                                 f"{WPPCONNECT_LOGIN_GONE}")
    return kick


def verify_kicks(gateway, kicked: list[Channel], wait: float, budget_end: float,
                 report: Report, relisted: Optional[dict] = None) -> dict[str, str]:
    """Wait, list again, and return reconnected/still_down for each kicked channel.

    `relisted`, when given, receives each kicked channel as the second listing shows it.
    """
    if wait <= 0:
        return {}
    # Leave room for the second list call inside the budget; skip the check rather than overrun.
    room = budget_end - time.monotonic() - min(gateway.settings.list_timeout, 5.0)
    if room < wait:
        report.notes.append((WARNING, "kicks not verified: not enough time left in "
                                      "HEALTHCHECK_DEADLINE for HEALTHCHECK_VERIFY_SECONDS"))
        return {}
    time.sleep(wait)
    try:
        listing = gateway.list_sessions()
    except HealthcheckError as exc:
        report.notes.append((WARNING, f"kicks not verified: "
                                      f"{name_settings(str(exc), gateway.settings)}"))
        return {}
    connected = {c.id for c in listing.channels if c.connected}
    if relisted is not None:
        wanted = {c.id for c in kicked}
        relisted.update((c.id, c) for c in listing.channels if c.id in wanted)
    return {c.id: "reconnected" if c.id in connected else "still_down" for c in kicked}


class RunLock:
    """An exclusive, non-blocking lock on a file beside the log, held for the whole run.

    While a run holds it, the file says which run and since when; a clean end empties it. So
    a lock file that is not empty when the next run takes it was left by a run that was killed
    (SIGKILL from a supervisor's timeout, the OOM killer, a reboot): `unfinished` says so.
    """

    def __init__(self, path: Path):
        self.path = path
        self._handle = None
        #: "run=<id> started=<time>" of a previous run that never finished, else "".
        self.unfinished = ""

    def acquire(self, run_id: str) -> bool:
        """Return False when another run holds the lock; raise OSError when it cannot be made."""
        import fcntl
        handle = open_own_file(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        self._handle = handle
        self.unfinished = os.pread(handle, 200, 0).decode("utf-8", "replace").strip()
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"run={run_id} started={log_timestamp()} pid={os.getpid()}\n"
                  .encode(), 0)
        return True

    def release(self) -> None:
        if self._handle is not None:
            try:
                os.ftruncate(self._handle, 0)  # a clean end: the next run finds it empty
            except OSError:
                pass
            os.close(self._handle)  # closing drops the flock
            self._handle = None


def log_timestamp(now: Optional[datetime] = None) -> str:
    """Local time with its UTC offset, e.g. 2026-02-09T14:30:00-03:00."""
    return (now or datetime.now()).astimezone().isoformat(timespec="seconds")


class UnsafeFileError(OSError):
    """A path where the script keeps a file holds something else: it is left alone."""


def _file_kind(mode: int) -> str:
    import stat
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_own_file(path: Path) -> bool:
    """Return True when `path` exists as a regular file of ours, False when it does not exist.

    Raise UnsafeFileError when something else is there: a symlink (it could point at .env or
    ~/.profile), a FIFO (it would block the run), a device, a folder, or another user's file
    (it could plant alerts). Such a path is never followed, opened for writing, renamed or
    deleted.
    """
    import stat
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(0, f"{_file_kind(info.st_mode)} is there, not a regular file; it "
                                 f"was left alone: remove it, or use another path")
    if info.st_uid != os.geteuid():
        raise UnsafeFileError(0, f"it belongs to {_user_name(info.st_uid)}, not to "
                                 f"{_user_name(os.geteuid())} who runs this; it was left "
                                 f"alone: remove it, or run the script as its owner")
    return True


def _user_name(uid: int) -> str:
    try:
        import pwd
        return f"user {pwd.getpwuid(uid).pw_name}"
    except (KeyError, ImportError):
        return f"uid {uid}"


def open_own_file(path: Path, flags: int) -> int:
    """Open a file of the script's own (created 0600), never through a link or into a FIFO."""
    import stat
    path.parent.mkdir(parents=True, exist_ok=True)
    check_own_file(path)
    try:
        handle = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (40, 6, 21):  # ELOOP, ENXIO, EISDIR: swapped in since the check
            raise UnsafeFileError(exc.errno, "something other than a regular file is there; "
                                             "it was left alone") from None
        raise
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(handle)
        raise UnsafeFileError(0, "something other than a regular file of ours is there; it was "
                                 "left alone")
    if flags & (os.O_WRONLY | os.O_RDWR) and stat.S_IMODE(info.st_mode) != 0o600:
        # Set on the descriptor, never by name: a name can be swapped for a link to .env between
        # two calls. Cron's `>> log 2>&1` creates the log 0644 before the script even starts.
        os.fchmod(handle, 0o600)
    return handle


def replace_own_file(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace a file atomically: a new file under a random name beside it, fsync, rename.

    A crash leaves the old file or the new, never half; the temporary name cannot be planted.
    """
    import tempfile
    path.parent.mkdir(parents=True, exist_ok=True)
    check_own_file(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            # The mode is set on the descriptor, never by name: whoever can write to the folder
            # could swap the name for a link to .env, and a chmod by name would follow it.
            os.fchmod(stream.fileno(), mode)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
            if not _is_open_file(temporary, stream.fileno()):
                raise UnsafeFileError(0, f"the temporary file {temporary} was replaced by "
                                         f"something else while it was written; nothing was "
                                         f"changed: check who else can write to "
                                         f"{path.parent}")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _is_open_file(path: str, handle: int) -> bool:
    """True when `path` (not followed) is still the file open as `handle`."""
    try:
        named, opened = os.lstat(path), os.fstat(handle)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def append_log(path: Path, run_id: str, lines: list[tuple[int, str]]) -> None:
    """Append one line per event, each with a timestamp, a level and the run id."""
    stamp = log_timestamp()
    text = "".join(f"{stamp} {STATE_NAMES[state]:<8} [{PROGRAM} run={run_id}] {message}\n"
                   for state, message in lines)
    handle = open_own_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        # One write in append mode: lines of concurrent writers never interleave mid-line.
        os.write(handle, text.encode("utf-8", "replace"))
    finally:
        os.close(handle)


def is_same_file(stream, path: Path) -> bool:
    """True when `stream` is the file at `path` (cron's `>> log 2>&1`)."""
    try:
        mine, theirs = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _empty_state() -> dict:
    return {"version": STATE_VERSION, "incidents": {}, "pending_alerts": []}


def load_state(path: Path, dry_run: bool) -> tuple[dict, list[tuple[int, str]]]:
    """Return the state of earlier runs, and notes; a corrupt file is moved aside, never fatal.

    A file over the size limit, or cut short, still gives back its incidents and waiting
    alerts when they can be read: they come before the activity history in the file, and only
    the history is lost (see `_salvage_state`).
    """
    try:
        if not check_own_file(path):
            return _empty_state(), []
        handle = open_own_file(path, os.O_RDONLY)
        with os.fdopen(handle, "rb") as stream:
            text = stream.read(MAX_STATE_BYTES + 1).decode("utf-8", "replace")
    except FileNotFoundError:
        return _empty_state(), []
    except UnsafeFileError as exc:
        # Not ours to read, move or replace: incidents cannot be kept; the checks go on.
        return _empty_state(), [(UNKNOWN, f"state file {path}: {exc.strerror}; incidents "
                                          f"and alerts are not tracked until it is fixed")]
    except OSError as exc:
        why, salvaged = exc.strerror or type(exc).__name__, None
    else:
        data = None
        if len(text) <= MAX_STATE_BYTES:
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):
                pass
        if (isinstance(data, dict) and isinstance(data.get("incidents"), dict)
                and isinstance(data.get("pending_alerts"), list)):
            return _join_watchdog_incidents(data), []
        why = (f"over the {MAX_STATE_BYTES // (1024 * 1024)} MB limit"
               if len(text) > MAX_STATE_BYTES else "not a state file (corrupt or truncated)")
        salvaged = _salvage_state(text)
    kept = ("its incidents and waiting alerts were kept, the activity history was dropped "
            "(silence detection learns it afresh)" if salvaged else "incidents start afresh")
    if dry_run:
        but = ", but for its incidents" if salvaged else ""
        return salvaged or _empty_state(), [(WARNING, f"state file {path} is unreadable "
                                                      f"({why}); ignored by this dry run{but}")]
    aside = path.with_name(f"{path.name}.corrupt-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
                           f"-{os.getpid()}")
    try:
        os.replace(path, aside)
        moved = f"moved aside to {aside.name}"
        _remove_old_asides(path)
    except OSError as exc:
        moved = f"could not be moved aside ({exc.strerror})"
    # State never stands between a channel and its reconnect: go on with what could be read.
    return salvaged or _empty_state(), [(WARNING, f"state file {path} was unreadable ({why}), "
                                                  f"{moved}; {kept}")]


def _salvage_state(text: str) -> Optional[dict]:
    """Return the incidents and waiting alerts of a state file cut short, None when lost.

    `save_state` writes the top-level keys one per line, at one space of indent, with the
    history last: each part before it can be decoded on its own from where its key starts.
    """
    decoder = json.JSONDecoder()
    parts = {}
    for key in ("incidents", "watchdog_incidents", "pending_alerts", "warned"):
        start = text.find(f'\n "{key}": ')
        if start < 0:
            continue
        try:
            parts[key], _ = decoder.raw_decode(text, start + len(key) + 6)
        except (ValueError, RecursionError):
            continue
    if not isinstance(parts.get("incidents"), dict):
        return None
    state = _empty_state()
    state["incidents"] = parts["incidents"]
    if isinstance(parts.get("watchdog_incidents"), dict):
        state["watchdog_incidents"] = parts["watchdog_incidents"]
    for key in ("pending_alerts", "warned"):
        if isinstance(parts.get(key), list):
            state[key] = parts[key]
    return _join_watchdog_incidents(state)


def _remove_old_asides(path: Path) -> None:
    """Remove all but the newest MAX_ASIDE_FILES state files set aside (of ours, regular)."""
    import glob
    import stat
    asides = []
    for candidate in path.parent.glob(f"{glob.escape(path.name)}.corrupt-*"):
        try:
            info = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
            asides.append((info.st_mtime, candidate.name, candidate))
    for _, _, old in sorted(asides, reverse=True)[MAX_ASIDE_FILES:]:
        try:
            os.unlink(old)
        except OSError:
            pass  # a file we cannot remove is left for a person; the run goes on


def save_state(path: Path, state: dict, redact: Redactor) -> Optional[str]:
    """Replace the state file atomically, its text redacted like every other output.

    The file never outgrows what `load_state` reads: when it would, the activity history of the
    channels least recently listed, then least recently heard from, is left out, and the line
    returned says how much (None when nothing was).
    """
    state = _redact_values(_split_watchdog_incidents(state), redact)
    text = _state_text(state)
    dropped, activity = 0, state.get("activity")
    if len(text) > MAX_STATE_BYTES and isinstance(activity, dict):
        state["activity"], dropped = cap_history(activity, len(text) - MAX_STATE_BYTES
                                                 + STATE_SLACK_BYTES)
        text = _state_text(state)
        if len(text) > MAX_STATE_BYTES:  # the estimate fell short: keep the incidents whole
            dropped = len(activity.get("channels") or ())
            state["activity"] = {**activity, "channels": {}}
            text = _state_text(state)
    replace_own_file(path, text)
    if not dropped:
        return None
    return (f"state file {path} would be over its {MAX_STATE_BYTES // (1024 * 1024)} MB limit: "
            f"the activity history of {_plural(dropped, 'channel')} was dropped, the least "
            f"recently listed or heard from first (silence detection learns them afresh)")


def _state_text(state: dict) -> str:
    # The history goes last: a file cut short still holds the incidents (see _salvage_state).
    ordered = {k: v for k, v in state.items() if k != "activity"}
    if "activity" in state:
        ordered["activity"] = state["activity"]
    return json.dumps(ordered, indent=1, ensure_ascii=True) + "\n"


def _split_watchdog_incidents(state: dict) -> dict:
    """Return the state as written: the channels' incidents apart from the script's own."""
    incidents = state.get("incidents") or {}
    return dict(state, incidents={k: v for k, v in incidents.items() if isinstance(k, str)},
                watchdog_incidents={name: incidents[key] for name, key
                                    in WATCHDOG_INCIDENTS.items() if key in incidents})


def _join_watchdog_incidents(data: dict) -> dict:
    """Return a state as read, the script's own incidents back under their keys."""
    incidents = dict(data["incidents"])
    own = data.pop("watchdog_incidents", None)
    if isinstance(own, dict):
        found = {WATCHDOG_INCIDENTS[name]: value for name, value in own.items()
                 if name in WATCHDOG_INCIDENTS}
    else:  # written by 1.1.0 or earlier, when they were kept among the channels
        found = {key: incidents.pop(name) for name, key in LEGACY_WATCHDOG_KEYS.items()
                 if name in incidents}
    incidents.update(found)
    data["incidents"] = incidents
    return data


def last_run_record(report: Report, run_id: str, ended: datetime) -> dict:
    """Return what `--status` repeats of this run: its status line, perfdata and details."""
    details = [text.replace("|", "/")[:MAX_STATUS_LINE_CHARS * 2]
               for _, text in report.lines()[1:MAX_STATUS_DETAIL_LINES + 1]]
    return {"ended_at": ended.isoformat(timespec="seconds"), "run_id": run_id,
            "exit_status": report.state, "status_line": report.status_line(),
            "details": details}


def read_last_run(path: Path) -> dict:
    """Return the last finished run recorded in the state file, or raise HealthcheckError.

    Read-only and lock-free, so a check never waits for the cron run nor makes it wait: the
    cron run replaces the file by a rename, so what is read is always a whole file.
    """
    import stat
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HealthcheckError(f"the cron run has not run yet: there is no state file {path}; "
                               f"check the crontab line, and that --status reads the same "
                               f".env as the cron run", UNKNOWN) from None
    except OSError as exc:
        raise HealthcheckError(f"cannot read the state file {path} "
                               f"({exc.strerror or type(exc).__name__}): run --status as the "
                               f"user the cron run runs as (sudo -u), with the same .env",
                               UNKNOWN) from None
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise HealthcheckError(f"the state file {path} is not a regular file; the cron "
                                   f"run reports it in its own output", UNKNOWN)
        raw = stream.read(MAX_STATE_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        data = None
    last = data.get("last_run") if isinstance(data, dict) else None
    if (not isinstance(last, dict) or not isinstance(last.get("status_line"), str)
            or last.get("exit_status") not in STATE_NAMES
            or _parse_time(last.get("ended_at")) is None):
        raise HealthcheckError(f"the state file {path} holds no finished run yet (a run of an "
                               f"earlier version wrote it, or it is unreadable): wait for the "
                               f"next cron run, and read the log if this lasts", UNKNOWN)
    return last


def judge_last_run(last: dict, now: datetime, max_age_minutes: float) -> tuple[int, list[str]]:
    """Return `--status`'s exit status and lines: the last run's own, or CRITICAL when stale.

    Pure: the record `read_last_run` returned, the time and the allowed age in.
    """
    ended = _parse_time(last["ended_at"])
    age = max((now - ended).total_seconds(), 0.0)
    text = last["status_line"].split(" | ", 1)[0]
    if age > max_age_minutes * 60:
        line = (f"WHATSAPP SESSIONS CRITICAL - no cron run has finished for {age / 60:.0f} min "
                f"(HEALTHCHECK_STATUS_MAX_AGE_MINUTES is {max_age_minutes:g}): cron no longer "
                f"runs the script, or its runs are killed before they end; check the crontab "
                f"and the log")
        return CRITICAL, [f"{line} | age={age:.0f}s;;{max_age_minutes * 60:.0f};0",
                          f"last result, at {last['ended_at']}: {text}"]
    return last["exit_status"], [
        last["status_line"],
        f"last cron run {quote_untrusted(last.get('run_id') or '?', 20)} ended at "
        f"{last['ended_at']} ({age / 60:.0f} min ago); this check made no gateway call",
        *[d for d in last.get("details") or [] if isinstance(d, str)][:MAX_STATUS_DETAIL_LINES]]


def show_status(settings: Settings, output: "_Output") -> int:
    """`--status`: print what the last cron run found; return its exit status (or why not)."""
    now = datetime.now().astimezone()
    try:
        last = read_last_run(settings.state_path)
    except HealthcheckError as exc:
        state, last = exc.state, None
        lines = [f"WHATSAPP SESSIONS {STATE_NAMES[state]} - {exc}"]
    else:
        state, lines = judge_last_run(last, now, settings.status_max_age_minutes)
    if output.as_json:
        print(json.dumps(_redact_tree({"state": STATE_NAMES[state], "exit_code": state,
                                       "lines": lines, "last_run": last}, output.redact),
                         ensure_ascii=True), flush=True)
    else:
        print(output.redact("\n".join(clean_text(line) for line in lines)), flush=True)
    return state


def _redact_values(value, redact: Redactor):
    """Return a JSON-ready value with every string value redacted; keys (channel ids) kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_values(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redact_values(v, redact) for k, v in value.items()}
    return value


def write_metrics(path: Path, text: str) -> None:
    """Replace the metrics file atomically, world-readable: node_exporter reads it as itself."""
    replace_own_file(path, text, mode=0o644)


def webhook_kind(url: str) -> str:
    """Return which renderer shows the webhook's text: "slack", "googlechat" or "markdown".

    Slack's incoming webhooks live under /services/ (hooks.slack.com), Google Chat's on
    chat.googleapis.com; Mattermost and Rocket.Chat (/hooks/...) and any other receiver get
    "markdown", whose escaping is the strictest.
    """
    parts = urlsplit(url)
    if parts.hostname == "hooks.slack.com" or parts.path.startswith("/services/"):
        return "slack"
    if parts.hostname == "chat.googleapis.com":
        return "googlechat"
    return "markdown"


#: Markdown punctuation that starts emphasis, code, links, images, headings or tables in
#: Mattermost and Rocket.Chat; a backslash before it shows it as it is.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_~\[\]#|])")
#: A list marker (-, +, 1., 1)) at the start of an item's text would nest a list in the bullet.
_LIST_MARKER = re.compile(r"^(\d*)([-+.)])")


def webhook_text(text: str, kind: str) -> str:
    """Return the alert text escaped so that the webhook's renderer shows it as plain text.

    &, < and > are written as entities for every kind: Slack and Google Chat read <...> as
    links and mentions (<!channel>), and Mattermost turns <!channel> into @channel before
    rendering. For Markdown renderers, each line's text is escaped too, after the line's own
    "- " bullet; a mention (@channel, @all, @here, @name) or a ~channel link gets a zero-width
    space after its @ or ~, because Mattermost finds mentions in the text that a backslash
    escape leaves.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if kind != "markdown":
        return text
    lines = []
    for line in text.split("\n"):
        bullet, body = ("- ", line[2:]) if line.startswith("- ") else ("", line)
        body = _MARKDOWN_PUNCTUATION.sub(r"\\\1", body)
        body = _LIST_MARKER.sub(r"\1\\\2", body)
        lines.append(bullet + re.sub(r"([@~])", "\\1\u200b", body))
    return "\n".join(lines)


def send_webhook(settings: Settings, message: dict, limit: float) -> None:
    """POST the alert as JSON with a `text` field (Slack, Mattermost, Rocket.Chat, Google Chat)."""
    kind = webhook_kind(settings.webhook_url)
    payload = dict(message, text=webhook_text(message["text"], kind))
    if kind == "slack":
        payload["mrkdwn"] = False  # *bold*, _italic_, ~strike~ and `code` stay as typed
    try:
        response = requests.post(settings.webhook_url, json=payload,
                                 allow_redirects=False, timeout=(limit, limit),
                                 stream=True)  # the answer is never read, so never inflated
        response.close()
    except requests.RequestException as exc:
        raise HealthcheckError(f"{type(exc).__name__} from "
                               f"{display_url(settings.webhook_url)}") from None
    if not 200 <= response.status_code < 300:
        raise HealthcheckError(f"HTTP {response.status_code}")


def send_email(settings: Settings, message: dict, limit: float) -> None:
    """Send the alert by e-mail with smtplib."""
    import smtplib
    import ssl
    from email.message import EmailMessage
    smtp = settings.smtp
    mail = EmailMessage()
    mail["Subject"] = message["text"].splitlines()[0]
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(smtp.recipients)
    mail.set_content(message["text"] + "\n")
    # Certificates are checked in both TLS modes, against the system's CAs or the one given.
    context = (ssl.create_default_context(cafile=str(smtp.ca_bundle) if smtp.ca_bundle else None)
               if smtp.tls != "off" else None)
    try:
        if smtp.tls == "ssl":
            connection = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=limit, context=context)
        else:
            connection = smtplib.SMTP(smtp.host, smtp.port, timeout=limit)
        with connection as server:
            if smtp.tls == "starttls":
                server.starttls(context=context)
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            server.send_message(mail)
    except ssl.SSLCertVerificationError as exc:
        raise HealthcheckError(f"SMTP {smtp.host}:{smtp.port}: the server's certificate is not "
                               f"trusted ({quote_untrusted(exc.verify_message or str(exc), 80)}): "
                               f"point HEALTHCHECK_SMTP_CA_BUNDLE at the CA that signed it"
                               ) from None
    except (OSError, smtplib.SMTPException) as exc:  # SMTPException is an OSError since 3.4
        raise HealthcheckError(f"SMTP {smtp.host}:{smtp.port}: {type(exc).__name__} "
                               f"{quote_untrusted(str(exc), 120)}{_smtp_hint(smtp, exc)}"
                               ) from None


def _smtp_hint(smtp: SmtpSettings, exc: BaseException) -> str:
    """Return what to check when a failure looks like a TLS mode that does not fit the port."""
    import smtplib
    import socket
    import ssl
    if smtp.tls != "ssl" and isinstance(exc, (socket.timeout, smtplib.SMTPServerDisconnected)):
        # An implicit-TLS server waits for a TLS hello and never sends the SMTP greeting.
        return ("; if the server wants TLS from the first byte (port 465), set "
                "HEALTHCHECK_SMTP_TLS=ssl")
    if smtp.tls == "ssl" and isinstance(exc, ssl.SSLError):
        return ("; if the server starts in plain text (ports 587, 25), set "
                "HEALTHCHECK_SMTP_TLS=starttls")
    return ""


def run_alert_command(settings: Settings, message: dict, limit: float) -> None:
    """Run HEALTHCHECK_ALERT_COMMAND with the alert as JSON on its standard input."""
    import shlex
    import subprocess
    # The command gets this process's environment without the secrets: anything it runs could
    # otherwise read them from /proc/<pid>/environ.
    environment = command_environment(os.environ, settings)
    try:
        done = subprocess.run(shlex.split(settings.alert_command), timeout=limit, env=environment,
                              input=json.dumps(message, ensure_ascii=False).encode("utf-8"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    except subprocess.TimeoutExpired:
        raise HealthcheckError(f"still running after {limit:.3g}s (HEALTHCHECK_ALERT_TIMEOUT); "
                               f"it was stopped") from None
    except (OSError, ValueError) as exc:  # not found, not executable, bad quoting
        raise HealthcheckError(f"cannot run HEALTHCHECK_ALERT_COMMAND: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise HealthcheckError(f"exit status {done.returncode}"
                               + (f": {quote_untrusted(said[0])}" if said else ""))


#: Variables that hold a secret, kept from the alert command's environment whatever their value.
SECRET_VARIABLES = frozenset({"WPP_GATEWAY_SECRET", "INFRA_SECRET_KEY", "HEALTHCHECK_SMTP_PASSWORD",
                              "DB_PASS", "HEALTHCHECK_ACTIVITY_DB", "HEALTHCHECK_GATEWAY_KEY"})
#: The script's own settings and the panel's database settings: none reaches the alert command.
#: Many can hold a token (webhook and ping URLs, a gateway URL with a password in it), and a
#: list of just those would miss the next one added.
SETTING_PREFIXES = ("WPP_", "HEALTHCHECK_", "INFRA_", "DB_")


def command_environment(environ, settings: Settings) -> dict[str, str]:
    """Return the environment for the alert command: no setting, nothing holding a secret.

    Whatever the source of a setting (.env or this process's environment), its variable is
    left out; so is any other variable whose value holds a secret or a token-bearing URL.
    """
    hidden = [s for s in settings.secrets_to_hide + settings.urls_to_hide
              if s and len(s) >= MIN_MASKED_SECRET]
    return {name: value for name, value in environ.items()
            if name not in SECRET_VARIABLES and not name.startswith(SETTING_PREFIXES)
            and not any(s in value for s in hidden)}

SENDERS = {"webhook": send_webhook, "email": send_email, "command": run_alert_command}


def deliver_alerts(settings: Settings, pending: list[dict], message: Optional[dict],
                   hard_end: float, report: Report) -> list[dict]:
    """Send this run's alert and any earlier one that failed; return what is still pending."""
    waiting = [dict(p) for p in pending if isinstance(p, dict) and isinstance(
        p.get("message"), dict) and isinstance(p["message"].get("text"), str)]
    if message is not None:
        waiting.append({"message": message, "destinations": settings.alert_destinations,
                        "attempts": 0})
    for entry in waiting:  # the kept ones too: a hand-edited state file is read as it is
        entry["message"] = _clean_alert(entry["message"], settings.redact)
    configured = set(settings.alert_destinations)
    still_pending = []
    for entry in waiting:
        outcome = {"text": entry["message"].get("text"), "delivered_to": [], "failed": {}}
        left = []
        destinations = entry.get("destinations")
        for destination in destinations if isinstance(destinations, list) else []:
            if not isinstance(destination, str) or destination not in configured:
                report.notes.append((WARNING, f"a kept alert for "
                                              f"{quote_untrusted(destination, 20)} was dropped: "
                                              f"it is no longer configured"))
                continue
            limit = min(settings.alert_timeout, hard_end - time.monotonic() - 2)
            try:
                if limit <= 0:
                    raise TimeoutError("no time left in HEALTHCHECK_DEADLINE")
                # The sender's own timeout fires first; the thread's catches a trickling peer.
                call_with_timeout(lambda d=destination, m=entry["message"], t=limit:
                                  SENDERS[d](settings, m, t), limit + 1)
                outcome["delivered_to"].append(destination)
            except (HealthcheckError, TimeoutError) as exc:
                error = settings.redact(quote_untrusted(str(exc)))
                outcome["failed"][destination] = error
                left.append(destination)
                report.notes.append((WARNING, f"alert delivery to {destination} failed: {error}; "
                                              f"kept, tried again next run"))
        if outcome["delivered_to"]:
            report.notes.append((OK, f"alert sent to {', '.join(outcome['delivered_to'])}"))
        if left:
            entry.update(destinations=left, attempts=_count(entry.get("attempts")) + 1)
            still_pending.append(entry)
        outcome["pending"] = bool(left)
        report.alerts.append(outcome)
    while len(still_pending) > 1 and len(json.dumps(still_pending)) > MAX_PENDING_BYTES:
        still_pending.pop(0)  # the oldest first, as below
        report.notes.append((WARNING, f"an undelivered alert was dropped, the oldest: over "
                                      f"{MAX_PENDING_BYTES // 1024} KB are waiting; fix the "
                                      f"alert destinations"))
    if len(still_pending) > MAX_PENDING_ALERTS:
        dropped = len(still_pending) - MAX_PENDING_ALERTS
        report.notes.append((WARNING, f"{dropped} undelivered alerts dropped, the oldest: over "
                                      f"{MAX_PENDING_ALERTS} are waiting; fix the alert "
                                      f"destinations"))
        still_pending = still_pending[dropped:]
    return still_pending


def _clean_alert(message: dict, redact: Redactor) -> dict:
    """Return the alert cleaned and redacted like any output, its text line by line.

    compose_alert cleans each line it writes; this keeps the line breaks between them and
    cleans whatever else a kept alert from the state file carries.
    """
    text = redact(message["text"])
    return dict(_redact_tree(message, redact),
                text="\n".join(clean_text(line) for line in text.split("\n")))


def ping_target(base: str, suffix: str, rid: str) -> str:
    """Return the ping URL: the suffix (/start, /fail) in the path, the query kept, plus rid.

    healthchecks documents `<url>/fail?create=1`; appending after the query would turn every
    failure into a success.
    """
    from urllib.parse import urlunsplit
    parts = urlsplit(base)
    query = "&".join(q for q in (parts.query, f"rid={rid}" if rid else "") if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, query, ""))


def send_ping(settings: Settings, suffix: str, body: str, hard_end: float,
              rid: str = "") -> Optional[str]:
    """Ping the dead man's switch (healthchecks.io style); return an error text or None."""
    url = ping_target(settings.ping_url, suffix, rid)
    error = "no time left in HEALTHCHECK_DEADLINE"
    for attempt in range(PING_RETRIES + 1):
        limit = min(settings.alert_timeout, hard_end - time.monotonic() - 1)
        if limit <= 0:
            break
        try:
            response = call_with_timeout(lambda t=limit: requests.post(
                url, data=body.encode("utf-8"), timeout=(t, t), allow_redirects=False,
                stream=True), limit)
            response.close()
            if 200 <= response.status_code < 300:
                return None
            error = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500:
                break  # the URL or the check is wrong: asking again cannot help
        except (requests.RequestException, TimeoutError) as exc:
            error = type(exc).__name__
        time.sleep(min(0.5 * (attempt + 1), max(hard_end - time.monotonic() - 1, 0)))
    return f"ping {display_url(settings.ping_url)}.../{suffix.strip('/') or 'success'} " \
           f"failed: {error}"


def ping_slice(deadline: float) -> float:
    """Return the seconds one dead-man ping may take, all its tries together."""
    return min(deadline * PING_SLICE_FRACTION, PING_SLICE_MAX)


class StartPing:
    """The /start ping, sent on its own thread: the gateway's part never waits for it."""

    def __init__(self, settings: Settings, body: str, end: float, rid: str):
        self.end, self.url = end, display_url(settings.ping_url or "")
        self._box: dict[str, Optional[str]] = {}
        self._thread = threading.Thread(
            target=lambda: self._box.update(error=send_ping(settings, "/start", body, end, rid)),
            name="ping-start", daemon=True)
        self._thread.start()

    def outcome(self) -> Optional[str]:
        """Wait for the ping, never past its slice; return its error text or None.

        The end ping waits for this one so that healthchecks sees /start first.
        """
        self._thread.join(max(self.end - time.monotonic(), 0))
        if self._thread.is_alive():
            return f"ping {self.url}.../start failed: no answer within its share of " \
                   f"HEALTHCHECK_DEADLINE"
        return self._box.get("error")


###############################################################################
# CLI #########################################################################
###############################################################################


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise HealthcheckError(f"bad command line: {message} (see --help)")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Return the parsed command line; a bad one raises HealthcheckError."""
    parser = _ArgumentParser(
        prog="healthcheck_sessions.py",
        description="Reconnects the WhatsApp sessions of a WPPConnect gateway that are not "
                    "connected. Silent and exit 0 when all are connected.",
        epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False)  # `--js` must not quietly mean --json
    parser.add_argument("--dry-run", action="store_true",
                        help="check and report, but make no reconnect call and write nothing")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of text")
    parser.add_argument("--force", action="store_true",
                        help="kick every channel that is not connected now, even one waiting "
                             "for a QR scan (whose kicks otherwise back off)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also report when every channel is connected")
    parser.add_argument("--env-file", type=Path, metavar="PATH",
                        help=f"settings file (default: {DEFAULT_ENV_FILE})")
    parser.add_argument("--timeout", "-t", type=float, metavar="SECONDS",
                        help="this run's deadline in seconds, overriding HEALTHCHECK_DEADLINE; "
                             "set it below the timeout of whatever runs the script (Nagios "
                             "service_check_timeout, Monit)")
    parser.add_argument("--status", action="store_true",
                        help="only repeat what the last cron run found, read from its state "
                             "file (no gateway call, no database, no lock, nothing written); "
                             "CRITICAL when no run finished within "
                             "HEALTHCHECK_STATUS_MAX_AGE_MINUTES: the check for Nagios, Icinga "
                             "and Monit")
    parser.add_argument("--version", "-V", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if args.status and (args.dry_run or args.force):
        parser.error("--status only reads the last run; it cannot be combined with "
                     "--dry-run or --force")
    return args


def _new_run_id() -> str:
    return os.urandom(4).hex()


class _Output:
    """Writes the report to stdout, warnings to stderr and events to the log, all redacted."""

    def __init__(self, as_json: bool, verbose: bool, redact: Redactor):
        self.as_json = as_json
        self.verbose = verbose
        self.redact = redact
        self.warnings: list[str] = []
        self.started = time.monotonic()

    def warn(self, message: str) -> None:
        """A line on stderr now (cron mails it), kept for the log too."""
        self.warnings.append(message)
        print(self.redact(f"{PROGRAM}: {message}"), file=sys.stderr, flush=True)

    def report(self, report: Report, stdout_is_log: bool) -> None:
        report.elapsed = time.monotonic() - self.started
        if self.as_json:
            # Redact each string before encoding: JSON escaping could hide a secret from it.
            print(json.dumps(_redact_tree(report.to_json(), self.redact), ensure_ascii=True),
                  flush=True)
            return
        if report.state == OK and not self.verbose:
            return  # cron mails any output: a healthy run stays silent
        if stdout_is_log and report.state != OK:
            return  # the same events were just appended to the log
        lines = report.lines()
        if report.state == OK:
            lines += [(OK, f"channel {quote_untrusted(c.id, 80)}: connected")
                      for c in report.channels if c.outcome is None]
        # Nagios reads everything after the first `|` as performance data.
        texts = [report.status_line()]
        head = f"WHATSAPP SESSIONS {STATE_NAMES[report.state]} - "
        # The status line was cut: say it whole, unless its whole text is one of the lines below
        # (a lone problem, such as a killed run's notice), which would then be said twice.
        if not texts[0].startswith(lines[0][1].replace("|", "/") + " | ") and \
                lines[0][1] not in {head + text for _, text in lines[1:]}:
            texts.append(lines[0][1].replace("|", "/"))
        texts += [text.replace("|", "/") for _, text in lines[1:]]
        print(self.redact("\n".join(texts)), flush=True)


def _redact_tree(value, redact: Redactor):
    """Return a JSON-ready value with every string, keys included, cleaned and redacted."""
    if isinstance(value, str):
        return redact(clean_text(value))
    if isinstance(value, list):
        return [_redact_tree(v, redact) for v in value]
    if isinstance(value, dict):
        return {_redact_tree(k, redact): _redact_tree(v, redact) for k, v in value.items()}
    return value


def _report_missing_package(package: str) -> int:
    """Say which package this Python lacks and how to fix it; log it where the log would be."""
    name = {"dotenv": "python-dotenv"}.get(package, package)
    if sys.prefix != sys.base_prefix:
        fix = (f"install it into that venv ({install_hint('-r requirements.txt')}), or point "
               f"cron at the Python of the venv that has it (.venv/bin/python "
               f"healthcheck_sessions.py)")
    else:  # cron's system python3
        fix = f"give the script a venv: {install_hint('-r requirements.txt')}"
    line = (f"WHATSAPP SESSIONS UNKNOWN - the package {name} is not installed for "
            f"{sys.executable}: {fix}")
    print(line, flush=True)
    try:
        append_log(SCRIPT_DIR / DEFAULT_LOG_FILE, _new_run_id(), [(UNKNOWN, line)])
    except OSError:
        pass
    return UNKNOWN


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one check; return the exit status."""
    if _MISSING_PACKAGE:
        return _report_missing_package(_MISSING_PACKAGE)
    import uuid
    run_id = _new_run_id()
    started = time.monotonic()
    raw_args = list(sys.argv[1:] if argv is None else argv)
    output = _Output("--json" in raw_args, verbose=False, redact=Redactor())
    args = None
    try:
        args = parse_args(raw_args)
        output.verbose = args.verbose
        settings = load_settings(args.env_file)
        if args.timeout is not None:
            if not 0 < args.timeout < 86400:
                raise HealthcheckError(f"bad command line: --timeout must be a number of "
                                       f"seconds above 0, got {args.timeout:g} (see --help)")
            settings = dataclasses.replace(settings, deadline=args.timeout)
    except HealthcheckError as exc:
        # --status writes nothing either: no log line, no ping.
        dry_run = "--dry-run" in raw_args or "--status" in raw_args
        report = Report(error=str(exc), error_state=exc.state, dry_run=dry_run)
        # No settings, so the log named in them may be unknown: log where it most likely is.
        fallback = _fallback_settings(args.env_file if args else None)
        if fallback.ping_url and not dry_run:  # a check that cannot run is a failed check
            send_ping(fallback, "/fail", report.lines()[0][1], time.monotonic() + 2,
                      str(uuid.uuid4()))
        _finish(report, fallback, run_id, output)
        return report.state
    global _untrusted_redactor
    output.redact = _untrusted_redactor = settings.redact
    if args.status:
        return show_status(settings, output)

    hard_end = started + settings.deadline
    run = RunContext(run_id=run_id, started=started, hard_end=hard_end,
                     budget_end=hard_end - min(settings.deadline * DEADLINE_RESERVE_FRACTION,
                                               DEADLINE_RESERVE_MAX),
                     dry_run=args.dry_run, force=args.force, ping_rid=str(uuid.uuid4()),
                     all_warnings=args.verbose or args.dry_run)
    lock = RunLock(settings.lock_file)
    # Two configurations (two cron lines, two log folders) may share one state file: its own
    # lock keeps their runs from interleaving on it.
    state_lock = RunLock(settings.state_path.with_name(settings.state_path.name + ".lock"))
    locks = [lock, state_lock]
    if not args.dry_run:
        for held in locks:
            try:
                if not held.acquire(run_id):
                    what = "the log" if held is lock else "the state file"
                    report = Report(error=f"another run is in progress (it holds {held.path}, "
                                          f"the lock of {what}); this run made no gateway call",
                                    error_state=UNKNOWN)
                    lock.release()
                    # No ping either: the run holding the lock will send it.
                    _finish(report, settings, run_id, output)
                    return report.state
                run.unfinished = run.unfinished or held.unfinished
            except OSError as exc:
                # The repair matters more than the lock: go on, and make the run UNKNOWN.
                run.lock_problem = (f"cannot create the lock file {held.path} "
                                    f"({exc.strerror or type(exc).__name__}): check that its "
                                    f"folder is writable, or set HEALTHCHECK_LOG_FILE and "
                                    f"HEALTHCHECK_STATE_FILE")
    previous_handler = signal.signal(signal.SIGTERM, _raise_run_interrupted)
    try:
        try:
            report = run_check(settings, run, output.warn)
        except KeyboardInterrupt as exc:
            report = _interrupted(settings, run, "SIGTERM" if isinstance(exc, RunInterrupted)
                                  else "SIGINT")
        except Exception:  # noqa: BLE001 - the last guard: a bug is one line, never silence
            report = _bug_report(run.dry_run)
            if settings.ping_url and not run.dry_run:
                send_ping(settings, "/fail", report.lines()[0][1], time.monotonic() + 2,
                          run.ping_rid)
        _finish(report, settings, run_id, output)
        return report.state
    finally:
        for held in locks:
            held.release()
        signal.signal(signal.SIGTERM, previous_handler)


def setup_warnings(settings: Settings) -> list[str]:
    """Return what is unsafe in the settings themselves: secrets readable or sent in clear."""
    warnings = []
    if settings.env_file_exposed:
        warnings.append(f"{settings.env_file} can be read by every user of this machine and "
                        f"holds the gateway secret: run  chmod 600 {settings.env_file} (or 640 "
                        f"with the web server's group)")
    if not settings.verify_tls:
        warnings.append("TLS certificate checking is OFF (HEALTHCHECK_VERIFY_TLS=false): anyone "
                        "on the path can read the gateway secret; set HEALTHCHECK_CA_BUNDLE "
                        "instead")
    host = urlsplit(settings.base_url).hostname or ""
    if settings.base_url.startswith("http://") and not _is_loopback(host):
        warnings.append(f"{settings.url_setting} is http://: the gateway secret crosses the "
                        f"network in clear on every run; use the gateway's https:// address")
    smtp = settings.smtp
    if smtp and smtp.password and smtp.tls == "off" and not _is_loopback(smtp.host):
        warnings.append("HEALTHCHECK_SMTP_TLS is off: the SMTP password crosses the network "
                        "in clear; set HEALTHCHECK_SMTP_TLS=starttls (ssl on port 465)")
    return warnings


def _is_loopback(host: str) -> bool:
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _interrupted(settings: Settings, run: RunContext, signal_name: str) -> Report:
    """Report a run stopped by a signal: what it had already done, and the /fail ping."""
    # The state file is only ever replaced whole, at the end: it stays as it was.
    done = list(run.kicked)
    kicked = (f"reconnect calls already made for {', '.join(quote_untrusted(c, 60) for c in done)}"
              if done else "no reconnect call had been made yet")
    report = Report(error=f"run interrupted by {signal_name} before it finished ({kicked}); "
                          f"the state file was left as it was", error_state=UNKNOWN,
                    dry_run=run.dry_run)
    if settings.ping_url and not run.dry_run:
        # The supervisor that sent the signal may kill us next: at most 2 s for the ping.
        error = send_ping(settings, "/fail", report.lines()[0][1], time.monotonic() + 2,
                          run.ping_rid)
        if error:
            report.notes.append((WARNING, error))
    return report


def _raise_run_interrupted(signum, frame):
    raise RunInterrupted()


def _digest(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _bug_report(dry_run: bool, gateway_failed: bool = False) -> Report:
    """Report the exception being handled as a bug: one line here, its traceback for the log."""
    import traceback
    kind, error, _ = sys.exc_info()
    name = getattr(kind, "__name__", "Exception")
    report = Report(error=f"internal error ({name}: {quote_untrusted(str(error), 120)}): this "
                          f"is a bug in {PROGRAM}; the traceback is in the log, please report "
                          f"it", error_state=UNKNOWN, dry_run=dry_run,
                    gateway_failed=gateway_failed)
    report.traceback = traceback.format_exc()
    return report


def run_check(settings: Settings, run: RunContext, warn: Callable[[str], None]) -> Report:
    """One run under the lock: ping, check, incidents, alerts, state, ping again."""
    state, state_notes = load_state(settings.state_path, run.dry_run)
    # Setup warnings would make cron mail every 15 minutes: each is printed (and logged) when it
    # first appears, and on every --verbose or --dry-run run.
    warnings = setup_warnings(settings)
    seen = state.get("warned") if isinstance(state.get("warned"), list) else []
    for text in warnings:
        if run.all_warnings or _digest(text) not in seen:
            warn(text)
    killed_note = None
    if run.unfinished:
        state["incidents"], killed_note = count_unfinished_run(
            state["incidents"], run.unfinished, datetime.now().astimezone())
        if not run.dry_run:
            try:  # counted now: if this run is killed too, the count still grows
                save_state(settings.state_path, state, settings.redact)
            except OSError:
                pass  # said at the end, when the state is written again
    pinging = bool(settings.ping_url) and not run.dry_run
    start_ping = StartPing(settings, f"{_hostname()}: run {run.run_id} started ({PROGRAM} "
                                     f"{__version__})",
                           min(time.monotonic() + ping_slice(settings.deadline), run.hard_end),
                           run.ping_rid) if pinging else None

    try:
        report, activity = check_gateway(settings, run, state, datetime.now().astimezone())
    except Exception:  # noqa: BLE001 - the last guard: the incident counting must go on
        # Whatever the gateway sent that we failed on, it counts as the gateway failing, so
        # "the gateway keeps failing" reaches a person on schedule.
        report = _bug_report(run.dry_run, gateway_failed=True)
        activity = state.get("activity") if settings.activity else None
    report.notes[:0] = state_notes
    if run.lock_problem:
        report.problems.append((UNKNOWN, run.lock_problem))
    if killed_note:
        report.problems.append((WARNING, killed_note))

    now = datetime.now().astimezone()
    policy = AlertPolicy(settings.alert_after, settings.alert_repeat_hours)
    incidents, items, incident_notes = plan_incidents(state["incidents"], report, now, policy)
    report.notes.extend(incident_notes)
    flaps, flap_items, flap_notes = plan_flaps(
        state.get("flaps"), repaired_drops(state["incidents"], report, now), now,
        settings.flap_drops)
    items += flap_items
    report.notes.extend(flap_notes)
    report.incidents = {key: {k: incident.get(k) for k in ("since", "runs_down", "kicks",
                                                          "last_outcome", "alerted_at")}
                        for key, incident in incidents.items()}
    message = compose_alert(items, report.state, _hostname(), run.run_id, now) if items else None
    if message is not None:
        where = ", ".join(settings.alert_destinations) or \
            "nowhere: no alert destination is configured, this log is the only record"
        level = OK if message["state"] == "RESOLVED" else max(report.state, WARNING)
        report.notes.append((level, f"alert to {where}: " + message["text"].replace("\n", " / ")))
    if run.dry_run:
        if message is not None:
            report.alerts.append({"text": message["text"], "items": message["items"],
                                  "would_send_to": settings.alert_destinations})
        return report

    pending = deliver_alerts(settings, state["pending_alerts"], message, run.hard_end, report)
    remembered = remembered_channels(state.get("last_seen"), report, now) \
        if settings.metrics_file else None
    try:
        new_state = {"version": STATE_VERSION, "updated_at": now.isoformat(timespec="seconds"),
                     "incidents": incidents, "pending_alerts": pending,
                     "warned": [_digest(text) for text in warnings]}
        report.elapsed = time.monotonic() - run.started
        new_state["last_run"] = last_run_record(report, run.run_id,
                                                datetime.now().astimezone())
        if activity is not None:
            new_state["activity"] = activity
        if flaps:
            new_state["flaps"] = flaps
        if remembered is not None:
            new_state["last_seen"] = remembered
        capped = save_state(settings.state_path, new_state, settings.redact)
        if capped:
            report.notes.append((WARNING, capped))
    except OSError as exc:
        report.problems.append((UNKNOWN, f"cannot write the state file {settings.state_path} "
                                         f"({exc.strerror or type(exc).__name__}): incidents and "
                                         f"alerts are not tracked; check the folder's "
                                         f"permissions or HEALTHCHECK_STATE_FILE"))
    if settings.metrics_file:
        report.elapsed = time.monotonic() - run.started
        try:
            write_metrics(settings.metrics_file, metrics_text(report, incidents, now,
                                                              remembered,
                                                              settings.metrics_max_channels))
        except OSError as exc:
            report.problems.append((UNKNOWN, f"cannot write the metrics file "
                                             f"{settings.metrics_file} "
                                             f"({exc.strerror or type(exc).__name__}): check "
                                             f"its folder or HEALTHCHECK_METRICS_FILE"))
    if start_ping is not None:
        ping_error = start_ping.outcome()
        if ping_error:
            report.notes.append((WARNING, ping_error))
        # healthchecks.io: the plain URL means success, /fail means the check failed. An
        # incident that has reached a person and is still open fails the check too, so the
        # ping alone is enough to hear of a channel that stays down.
        still_open = any(i.get("alerted_at") for i in incidents.values())
        body = "\n".join(settings.redact(text) for _, text in report.lines())
        ping_error = send_ping(settings, "" if report.state <= WARNING and not still_open
                               else "/fail", body[:10000],
                               min(time.monotonic() + ping_slice(settings.deadline),
                                   run.hard_end), run.ping_rid)
        if ping_error:
            report.notes.append((WARNING, ping_error))
    return report


def _fallback_settings(env_file: Optional[Path]) -> Settings:
    """Return what can still be read when the settings are bad: the log path and the ping URL."""
    log_file = SCRIPT_DIR / DEFAULT_LOG_FILE
    ping_url = None
    try:
        source = _EnvSource(env_file or DEFAULT_ENV_FILE, os.environ, explicit=False)
        log_file = source.path("HEALTHCHECK_LOG_FILE", log_file) or log_file
        ping_url = source.url("HEALTHCHECK_PING_URL")
    except HealthcheckError:
        pass
    return Settings(base_url="", secret="", secrets_to_hide=(), log_file=log_file,
                    ping_url=ping_url, urls_to_hide=(ping_url,) if ping_url else ())


def _finish(report: Report, settings: Settings, run_id: str, output: _Output) -> None:
    """Write the log (when something is wrong) and print the report."""
    stdout_is_log = False
    if (report.worth_logging or output.warnings) and not report.dry_run:
        lines = report.lines()
        if not is_same_file(sys.stderr, settings.log_file):  # else they are in the log already
            lines += [(WARNING, w) for w in output.warnings]
        if report.traceback:
            lines += [(UNKNOWN, "traceback: " + clean_text(line)[:500]) for line in
                      report.traceback.rstrip().splitlines()[-MAX_TRACEBACK_LINES:]]
        redacted = [(state, output.redact(text)) for state, text in lines]
        try:
            append_log(settings.log_file, run_id, redacted)
            stdout_is_log = is_same_file(sys.stdout, settings.log_file)
        except OSError as exc:
            message = (f"cannot write the log file {settings.log_file} "
                       f"({exc.strerror or type(exc).__name__}): check the folder's owner and "
                       f"permissions, or set HEALTHCHECK_LOG_FILE")
            report.problems.append((UNKNOWN, message))
            print(output.redact(f"{PROGRAM}: {message}"), file=sys.stderr, flush=True)
    output.report(report, stdout_is_log)


if __name__ == "__main__":
    sys.exit(main())
