"""The settings reference: every variable the command reads, in one table.

`--help`, docs/settings.md (tools/make_docs.py) and the checks on .env.example are made from
it; a test fails when the code reads a variable this table does not name.
"""

from typing import NamedTuple


class SettingDoc(NamedTuple):
    name: str
    default: str  # Markdown, as shown in docs/settings.md; empty: unset by default
    meaning: str  # Markdown, one paragraph
    short: str = ""  # one line for --help; empty: the meaning up to its first ";"


SETTINGS = (
    SettingDoc('HEALTHCHECK_GATEWAY',
               '`wrapper`',
               "which gateway: `wrapper` (the operator's Node wrapper), `waha`, `evolution` or "
               '`wppconnect`',
               'wrapper (default), waha, evolution or wppconnect'),
    SettingDoc('HEALTHCHECK_GATEWAY_URL',
               '`WPP_GATEWAY_BASE_URL` for the wrapper',
               "the gateway's address",
               "the gateway's address (wrapper: WPP_GATEWAY_BASE_URL also works)"),
    SettingDoc('HEALTHCHECK_GATEWAY_KEY',
               '`WPP_GATEWAY_SECRET` for the wrapper',
               "WAHA's `X-Api-Key`, Evolution's global `apikey`, WPPConnect-Server's `SECRET_KEY`"
               ' (masked, like the tokens minted from it)',
               'WAHA X-Api-Key, Evolution apikey, WPPConnect SECRET_KEY'),
    SettingDoc('HEALTHCHECK_STARTING_GRACE_MINUTES',
               '`10`',
               'a starting or reconnecting session is left to the gateway this long (reported, '
               'neither revived nor alerted)',
               'a starting session is left alone this long (default 10)'),
    SettingDoc('HEALTHCHECK_SILENT_ACTION',
               '`alert`',
               '`restart`: a silent channel is also restarted, non-destructively, where the '
               'gateway can (WAHA, Evolution, WPPConnect)',
               'alert (default) or restart: what a silent channel gets'),
    SettingDoc('WPP_GATEWAY_BASE_URL',
               '(required for the wrapper)',
               'gateway address with its port, e.g. `https://wpp.example.com:8443`; `http://` or '
               '`https://` only',
               'gateway address, e.g. https://wpp.example.com:8443'),
    SettingDoc('WPP_GATEWAY_SECRET',
               '(required for the wrapper)',
               "sent as `X-Gateway-Secret`; plain, or the panel's encrypted form",
               "sent as X-Gateway-Secret; may be the panel's encrypted form"),
    SettingDoc('INFRA_SECRET_KEY',
               '',
               "the panel's key; decrypts an encrypted `WPP_GATEWAY_SECRET`",
               "the panel's key, to decrypt an encrypted WPP_GATEWAY_SECRET"),
    SettingDoc('HEALTHCHECK_LOG_FILE',
               '`logs/healthcheck-sessions.log`',
               "log path, relative to the script's folder; the run lock sits beside it",
               'log path (default logs/healthcheck-sessions.log beside the script)'),
    SettingDoc('HEALTHCHECK_CONNECT_TIMEOUT',
               '`10`',
               'seconds to connect',
               'seconds to connect (default 10)'),
    SettingDoc('HEALTHCHECK_LIST_TIMEOUT',
               '`90`',
               'seconds for the whole `GET /api/channels` (the list is slow)',
               'seconds for GET /api/channels (default 90)'),
    SettingDoc('HEALTHCHECK_QR_TIMEOUT',
               '`30`',
               'seconds for each whole reconnect call',
               'seconds for each reconnect call (default 30)'),
    SettingDoc('HEALTHCHECK_DEADLINE',
               '`600`',
               'seconds a whole run may last, whatever the gateway does',
               'seconds a whole run may last (default 600)'),
    SettingDoc('HEALTHCHECK_WORKERS',
               '`4`',
               'reconnect calls at once (1 to 64); each may start a browser on the gateway',
               'reconnect calls at once (default 4)'),
    SettingDoc('HEALTHCHECK_VERIFY_TLS',
               '`true`',
               "check the gateway's certificate; `false` prints a warning every run",
               "true/false: check the gateway's certificate (default true)"),
    SettingDoc('HEALTHCHECK_CA_BUNDLE',
               '',
               'a PEM CA file to trust for the gateway (self-signed certificates)',
               "a CA file to trust instead of the system's"),
    SettingDoc('HEALTHCHECK_EXPECTED_CHANNELS',
               '',
               'comma-separated channels that must be listed (case and spaces ignored)',
               'comma-separated channels that must be listed'),
    SettingDoc('HEALTHCHECK_IGNORE_CHANNELS',
               '',
               'comma-separated channels, or shell-style patterns (`test-*`), stopped on purpose:'
               ' never revived, alerted or reported missing; `ignored` in `--json` and in the '
               'perfdata (case and spaces ignored)',
               'channels (or shell-style patterns: test-*) never revived nor alerted'),
    SettingDoc('HEALTHCHECK_STATE_FILE',
               '`healthcheck-state.json` beside the log',
               'incidents across runs, alerts waiting to be resent',
               'incidents across runs (default healthcheck-state.json by the log)'),
    SettingDoc('HEALTHCHECK_VERIFY_SECONDS',
               '`30`',
               'after the revive calls, wait this long and list again (`reconnected` / '
               '`still_down`); `0` turns it off',
               'wait, then list again to check the revived channels (default 30; 0 off)'),
    SettingDoc('HEALTHCHECK_ALERT_AFTER',
               '`2`',
               'runs down in a row before a person is told (a QR is told at once)',
               'runs down in a row before a person is told (default 2)'),
    SettingDoc('HEALTHCHECK_ALERT_REPEAT_HOURS',
               '`6`',
               'reminder interval while an incident lasts; `0`: no reminders',
               'reminder interval while an incident lasts (default 6)'),
    SettingDoc('HEALTHCHECK_ALERT_TIMEOUT',
               '`10`',
               'seconds for each alert delivery and each ping',
               'seconds for each alert delivery and ping (default 10)'),
    SettingDoc('HEALTHCHECK_ALERT_WEBHOOK_URL',
               '',
               'POST each alert as JSON with a `text` field (Slack, Mattermost, Rocket.Chat, '
               'Google Chat), escaped for the renderer its URL names (see "Incidents, alerts")',
               'POST alerts as JSON with a "text" field, escaped for its renderer'),
    SettingDoc('HEALTHCHECK_SMTP_HOST',
               '',
               'send alerts by e-mail through this SMTP server',
               'alerts by e-mail through this SMTP server'),
    SettingDoc('HEALTHCHECK_SMTP_PORT',
               '`587` (`465` with `ssl`, `25` with `off`)',
               'its port',
               'its port (default 465 with ssl, 587 with starttls, 25 with off)'),
    SettingDoc('HEALTHCHECK_SMTP_USER',
               '',
               'login, if the server wants one',
               'login, if the server wants one'),
    SettingDoc('HEALTHCHECK_SMTP_PASSWORD',
               '',
               'its password (masked like the gateway secret)',
               'password for that login'),
    SettingDoc('HEALTHCHECK_SMTP_FROM',
               '`healthcheck-sessions@<host>`',
               'sender',
               'sender address'),
    SettingDoc('HEALTHCHECK_SMTP_TO',
               '(required with a host)',
               'comma-separated recipients',
               'comma-separated recipients'),
    SettingDoc('HEALTHCHECK_SMTP_TLS',
               '`ssl` on port 465, else `starttls`',
               '`starttls` (upgrade a plain connection, ports 587/25), `ssl` (implicit TLS from '
               'the first byte, port 465) or `off`; the certificate is always checked',
               'starttls, ssl (implicit TLS) or off (default: ssl on 465, else starttls)'),
    SettingDoc('HEALTHCHECK_SMTP_STARTTLS',
               '',
               'older setting, still read as an alias: `false` is `HEALTHCHECK_SMTP_TLS=off`, '
               '`true` lets the port choose; set one of the two',
               'older alias: false is HEALTHCHECK_SMTP_TLS=off'),
    SettingDoc('HEALTHCHECK_SMTP_CA_BUNDLE',
               '',
               "a PEM CA file that signed the SMTP server's certificate, trusted instead of the "
               "system's for e-mail only (`HEALTHCHECK_CA_BUNDLE` is for the gateway)",
               "a CA file that signed the SMTP server's certificate"),
    SettingDoc('HEALTHCHECK_ALERT_COMMAND',
               '',
               'a command run with each alert as JSON on stdin (split like a shell line, run '
               'without a shell)',
               'a command that gets each alert as JSON on stdin'),
    SettingDoc('HEALTHCHECK_PING_URL',
               '',
               "dead man's switch: `<url>/start`, then `<url>` (exit 0/1) or `<url>/fail` (exit "
               '2/3)',
               "dead man's switch: <url>/start, <url>, <url>/fail"),
    SettingDoc('HEALTHCHECK_METRICS_FILE',
               '',
               'Prometheus metrics, rewritten atomically every run (not `--dry-run`), mode 0644, '
               "for node_exporter's textfile collector",
               'Prometheus metrics, rewritten every run (node_exporter textfile)'),
    SettingDoc('HEALTHCHECK_FLAP_DROPS',
               '`4`',
               'a channel with this many repaired drops within 24 h is flapping: one WARNING '
               'alert, at most one reminder a day while it goes on, resolved after 24 h without a'
               ' drop; `0` turns it off',
               'repaired drops within 24 h that make a channel flapping (default 4; 0 off)'),
    SettingDoc('HEALTHCHECK_METRICS_MAX_CHANNELS',
               '`5000`',
               'channels with series of their own in the metrics file, those not connected first;'
               ' the totals count every channel (`0`: totals only)',
               'per-channel series in the metrics file (default 5000)'),
    SettingDoc('HEALTHCHECK_STATUS_MAX_AGE_MINUTES',
               '`35`',
               '`--status`: when the last finished run is older than this, the check is CRITICAL '
               '(two missed 15-minute runs and a margin)',
               '--status: a last run older than this is CRITICAL (default 35)'),
    SettingDoc('HEALTHCHECK_QR_RETRY_HOURS',
               '`6`',
               'after a revive that issued a QR: revive again on runs 2, 4, 8, 16... of the '
               'incident, then this often, and at once when the status changes',
               'after a QR, revive on runs 2, 4, 8... then this often (default 6)'),
    SettingDoc('HEALTHCHECK_ACTIVITY_DB',
               '',
               'where inbound messages are stored: an SQLAlchemy URL (`sqlite:////abs/path.db`, '
               '`mysql+pymysql://user:pass@host:3306/db`, '
               "`postgresql+psycopg://user:pass@host/db`) or `panel` (the panel's `DB_*` "
               'settings); unset: no silence check',
               'database of inbound messages (an SQLAlchemy URL) or `panel` (its DB_*)'),
    SettingDoc('HEALTHCHECK_ACTIVITY_QUERY',
               "the panel's query with `panel`",
               'SQL returning one `(channel, received_at)` row per inbound message after `:since`'
               ' (a date and time) or `:since_epoch` (epoch seconds)',
               'SQL returning (channel, received_at) rows after :since'),
    SettingDoc('HEALTHCHECK_ACTIVITY_TZ',
               "this machine's zone",
               'the zone of naive dates and times in that database, e.g. `America/Sao_Paulo`',
               "zone of naive times in that database (default: this machine's)"),
    SettingDoc('HEALTHCHECK_ACTIVITY_TIMEOUT',
               '`30`',
               'seconds the query may take (never past `HEALTHCHECK_DEADLINE`)',
               'seconds for the activity query (default 30)'),
    SettingDoc('HEALTHCHECK_SILENT_HOURS',
               '`72`',
               'a connected channel that has had inbound messages is silent after this many hours'
               ' without one',
               'a connected channel silent this long is reported (default 72)'),
    SettingDoc('HEALTHCHECK_SILENT_HOURS_BY_CHANNEL',
               '',
               'per-channel ceilings, or `off`: `imobsites=168,orsegups=off`',
               'per channel: imobsites=168,orsegups=off'),
    SettingDoc('HEALTHCHECK_SILENT_MIN_MINUTES',
               '`60`',
               'the earliest a busy channel is called silent by its own rhythm',
               'the earliest a busy channel is called silent (default 60)'),
    SettingDoc('DB_HOST',
               '',
               "the panel's MySQL/MariaDB host, read with `HEALTHCHECK_ACTIVITY_DB=panel` "
               '(`localhost`: its socket, see `DB_SOCKET`)',
               "DB_PORT DB_NAME DB_USER DB_PASS DB_CHARSET  the panel's database, for `panel`"),
    SettingDoc('DB_PORT',
               '`3306`',
               "the panel's database port, for `HEALTHCHECK_ACTIVITY_DB=panel`",
               ''),
    SettingDoc('DB_NAME',
               '',
               "the panel's database name, for `HEALTHCHECK_ACTIVITY_DB=panel`",
               ''),
    SettingDoc('DB_USER',
               '',
               "the panel's database user, for `HEALTHCHECK_ACTIVITY_DB=panel`",
               ''),
    SettingDoc('DB_PASS',
               '',
               "the panel's database password (masked like the secret)",
               ''),
    SettingDoc('DB_CHARSET',
               '`utf8mb4`',
               "the panel's database charset, for `HEALTHCHECK_ACTIVITY_DB=panel`",
               ''),
    SettingDoc('DB_SOCKET',
               'the first of `/run/mysqld/mysqld.sock`, `/var/run/mysqld/mysqld.sock`, '
               '`/tmp/mysql.sock` that is there',
               "the socket `DB_HOST=localhost` means, as for the panel's PHP (mysqli): a user "
               "granted only `@'localhost'` is refused over TCP on a server with "
               '`--skip-name-resolve`; with no socket found, TCP to `DB_PORT`',
               'the socket DB_HOST=localhost means (default: the usual paths)'),
)


def settings_help() -> str:
    """The settings part of --help: each variable, its default and one line on what it does."""
    lines = ["settings (.env beside the command, or --env-file; the environment wins over the "
             "file):"]
    for setting in SETTINGS:
        short = setting.short or setting.meaning.split(";")[0].replace("`", "")
        lines.append(f"  {setting.name:<36} {short}")
    lines += ["", "exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
              "every setting: docs/settings.md"]
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    """The Markdown table of docs/settings.md."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.default} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"

