"""Reads the activity rows from the database (SQLAlchemy, imported only when set)."""

import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Optional

from .activity import (
    ActivityRowError,
    _is_time,
    clock_repeats,
    learn_activity,
    naive_time,
    to_epoch,
)
from .bounded import call_with_timeout
from .constants import (
    ACTIVITY_AHEAD_TOLERANCE,
    ACTIVITY_WINDOW_SECONDS,
    MAX_CHANNEL_ID_CHARS,
    MAX_REPEAT_SECONDS,
    WARNING,
    install_hint,
)
from .errors import HealthcheckError
from .report import Report
from .settings import ActivitySettings
from .text import _plural, channel_key, quote_untrusted
from .times import _duration


def read_activity(source: ActivitySettings, previous: dict, listed: set, now: float,
                  budget_end: float, report: Optional[Report] = None,
                  expected: Sequence[str] = (), redact=None) -> dict:
    """Read the inbound messages received since the last run; return the updated history.

    Raises HealthcheckError (UNKNOWN) saying what to check when the source cannot be read;
    rows with times that cannot be trusted are said in `report` (one line each kind). `redact`
    masks the run's secrets in what the database says (its error may echo the password).
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
                               f"{quote_untrusted(repr(mark), 40, redact)} is not a usable "
                               f"time (an earlier version kept it from a row with a bad time): the "
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
                    raise ActivityRowError(f"the query failed: "
                                           f"{_database_error(exc, redact)}") from None
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
                               f"{sys.executable} ({quote_untrusted(str(exc), 80, redact)}): run  "
                               f"{install_hint('-r requirements-activity.txt')}") from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise HealthcheckError(f"{where}: HEALTHCHECK_ACTIVITY_DB names a database type or "
                               f"driver SQLAlchemy does not know; use sqlite:///, "
                               f"mysql+pymysql:// or postgresql+psycopg://") from None
    except sqlalchemy.exc.ArgumentError:
        raise HealthcheckError(f"{where}: HEALTHCHECK_ACTIVITY_DB is not a valid database URL"
                               ) from None
    except sqlalchemy.exc.OperationalError as exc:
        raise HealthcheckError(f"{where}: {_database_error(exc, redact)}; check that the "
                               f"database is running and reachable, and its user and password in "
                               f"HEALTHCHECK_ACTIVITY_DB (or DB_* for panel)") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        said = str(exc).splitlines()[0] if str(exc) else ""
        raise HealthcheckError(f"{where}: {type(exc).__name__}: "
                               f"{quote_untrusted(said, redact=redact)}"
                               f"; check HEALTHCHECK_ACTIVITY_DB and HEALTHCHECK_ACTIVITY_QUERY"
                               ) from None


def _database_error(exc, redact) -> str:
    """Return the driver's own message, one line, without the SQL SQLAlchemy appends."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(a) for a in getattr(original, "args", ()) if a is not None) or \
        str(original)
    return quote_untrusted(f"{type(original).__name__}: {text.strip()}", 160, redact)


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
