"""Times read from and written to the state, and durations for people (pure)."""

from datetime import datetime, timezone
from typing import Optional


def _iso(epoch: float) -> str:
    """Return epoch seconds as local time with its offset, like the log's timestamps."""
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone().isoformat(timespec="seconds")


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
