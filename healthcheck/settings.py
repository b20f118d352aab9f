"""Settings read from .env and the environment, checked once; warnings about them."""

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional
from urllib.parse import quote, urlsplit

from dotenv import dotenv_values

from .constants import (
    DEFAULT_ACTIVITY_TIMEOUT,
    DEFAULT_ALERT_AFTER,
    DEFAULT_ALERT_REPEAT_HOURS,
    DEFAULT_ALERT_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE,
    DEFAULT_ENV_FILE,
    DEFAULT_FLAP_DROPS,
    DEFAULT_LIST_TIMEOUT,
    DEFAULT_LOG_FILE,
    DEFAULT_METRICS_MAX_CHANNELS,
    DEFAULT_QR_RETRY_HOURS,
    DEFAULT_QR_TIMEOUT,
    DEFAULT_SILENT_HOURS,
    DEFAULT_SILENT_MIN_MINUTES,
    DEFAULT_STARTING_GRACE_MINUTES,
    DEFAULT_STATUS_MAX_AGE_MINUTES,
    DEFAULT_VERIFY_SECONDS,
    DEFAULT_WORKERS,
    GATEWAY_TYPES,
    MYSQL_SOCKET_PATHS,
    PANEL_ACTIVITY_QUERY,
    SCRIPT_DIR,
    install_hint,
)
from .errors import HealthcheckError
from .files import _file_kind
from .text import Redactor, channel_key, quote_untrusted


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
            beyond = f" (it must stay below {high:g})" if value >= high else ""
            raise HealthcheckError(f"{name} must be a number of {unit} "
                                   f"{'from 0' if allow_zero else 'above 0'}, got "
                                   f"{quote_untrusted(raw, 40)!r}{beyond}: {self.where(name)}")
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
                                "received_at) rows received after :since; see "
                                "docs/silent-channels-and-backoff.md")
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
