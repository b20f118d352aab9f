"""Alert deliveries (webhook, e-mail, command) and dead man's switch pings."""

import json
import os
import re
import threading
import time
from typing import Optional
from urllib.parse import urlsplit

import requests

from .bounded import call_with_timeout
from .constants import (
    MAX_PENDING_ALERTS,
    MAX_PENDING_BYTES,
    OK,
    PING_RETRIES,
    PING_SLICE_FRACTION,
    PING_SLICE_MAX,
    WARNING,
)
from .errors import HealthcheckError
from .report import Report
from .settings import Settings, SmtpSettings
from .text import (
    MIN_MASKED_SECRET,
    Redactor,
    _count,
    _redact_tree,
    clean_text,
    display_url,
    quote_untrusted,
)


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


# Patterns, compiled (and cached by re) when an alert is rendered, not by every run's import.
#: Markdown punctuation that starts emphasis, code, links, images, headings or tables in
#: Mattermost and Rocket.Chat; a backslash before it shows it as it is.
_MARKDOWN_PUNCTUATION = r"([\\`*_~\[\]#|])"
#: A list marker (-, +, 1., 1)) at the start of an item's text would nest a list in the bullet.
_LIST_MARKER = r"^(\d*)([-+.)])"


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
        body = re.sub(_MARKDOWN_PUNCTUATION, r"\\\1", body)
        body = re.sub(_LIST_MARKER, r"\1\\\2", body)
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
        said = quote_untrusted(exc.verify_message or str(exc), 80, settings.redact)
        raise HealthcheckError(f"SMTP {smtp.host}:{smtp.port}: the server's certificate is not "
                               f"trusted ({said}): "
                               f"point HEALTHCHECK_SMTP_CA_BUNDLE at the CA that signed it"
                               ) from None
    except (OSError, smtplib.SMTPException) as exc:  # SMTPException is an OSError since 3.4
        raise HealthcheckError(f"SMTP {smtp.host}:{smtp.port}: {type(exc).__name__} "
                               f"{quote_untrusted(str(exc), 120, settings.redact)}"
                               f"{_smtp_hint(smtp, exc)}"
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
                               + (f": {quote_untrusted(said[0], redact=settings.redact)}"
                                  if said else ""))


#: The script's own settings and the panel's database settings: none reaches the alert command,
#: whatever its value. Many can hold a secret or a token (the gateway key, DB_PASS, webhook and
#: ping URLs), and a list of just those would miss the next one added.
SETTING_PREFIXES = ("WPP_", "HEALTHCHECK_", "INFRA_", "DB_")


def command_environment(environ, settings: Settings) -> dict[str, str]:
    """Return the environment for the alert command: no setting, nothing holding a secret.

    Whatever the source of a setting (.env or this process's environment), its variable is
    left out; so is any other variable whose value holds a secret or a token-bearing URL.
    """
    hidden = [s for s in settings.secrets_to_hide + settings.urls_to_hide
              if s and len(s) >= MIN_MASKED_SECRET]
    return {name: value for name, value in environ.items()
            if not name.startswith(SETTING_PREFIXES) and not any(s in value for s in hidden)}


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
                name = quote_untrusted(destination, 20, settings.redact)
                report.notes.append((WARNING, f"a kept alert for {name} was dropped: it is no "
                                              f"longer configured"))
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
                error = quote_untrusted(str(exc), redact=settings.redact)
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
