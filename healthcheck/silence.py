"""When a connected channel is silent for too long (pure)."""

from datetime import datetime, timezone
from typing import Optional

from .activity import _is_time, hourly_counts
from .constants import (
    ACTIVITY_MIN_HISTORY_SECONDS,
    ACTIVITY_WINDOW_SECONDS,
    HOURS_PER_WEEK,
    SILENT_EXPECTED_MESSAGES,
)
from .model import Silence
from .times import _duration


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
