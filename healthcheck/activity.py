"""Inbound-message history learned from activity rows (pure)."""

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Optional

from .constants import (
    ACTIVITY_AHEAD_TOLERANCE,
    ACTIVITY_MAX_AHEAD,
    ACTIVITY_WINDOW_SECONDS,
    HOURS_PER_WEEK,
    MAX_EPOCH,
    MAX_HOURLY_COUNT,
)
from .text import _count, quote_untrusted


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
