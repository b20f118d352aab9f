"""healthcheck/silence.py in-process: when a connected channel's quiet is a silence.

Each history is built as the state keeps it (first, last, base hour, hourly counts); the time
is passed in. No database, no clock.
"""

import sys
from datetime import datetime, timezone

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.model import Silence
from healthcheck.silence import SILENT_ADVICE, assess_silence, describe_silence, expected_inbound

HOUR, DAY = 3600, 86400
NOW = datetime(2026, 2, 9, 15, 0, tzinfo=timezone.utc).timestamp()


def steady(days: float = 14, per_hour: int = 10, quiet_hours: float = 2) -> dict:
    """A channel that had `per_hour` messages every hour for `days`, then `quiet_hours` of none."""
    first, last = NOW - days * DAY, NOW - quiet_hours * HOUR
    hours = int(last // HOUR) - int(first // HOUR) + 1
    return {"first": first, "last": last, "base": int(first // HOUR),
            "counts": ",".join([str(per_hour)] * hours)}


def local(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone().isoformat(timespec="seconds")


def test_expected_messages_are_the_hourly_rate_over_the_quiet_hours():
    assert expected_inbound(steady(quiet_hours=2), NOW) == 20.0
    assert expected_inbound(steady(quiet_hours=0.5), NOW) == 5.0  # part of an hour, in part


def test_nothing_is_expected_in_hours_of_the_week_never_seen():
    """Six days of history then three quiet: those hours of the week were never seen."""
    assert expected_inbound(steady(days=6, quiet_hours=72), NOW) == 10.0  # only the last hour


def test_expected_is_zero_without_usable_times_or_with_last_not_before_now():
    assert expected_inbound({}, NOW) == 0.0
    assert expected_inbound({"first": "x", "last": NOW - HOUR}, NOW) == 0.0
    assert expected_inbound(dict(steady(), last=NOW), NOW) == 0.0


def test_a_busy_channel_gone_quiet_is_silent_by_its_own_history():
    silence = assess_silence(steady(quiet_hours=2), NOW, 72, 60)
    assert silence == Silence(NOW - 2 * HOUR, 20.0, "history")


def test_the_history_rule_needs_seven_expected_messages():
    assert assess_silence(steady(per_hour=1, quiet_hours=6), NOW, 72, 60) is None
    assert assess_silence(steady(per_hour=1, quiet_hours=7), NOW, 72, 60).rule == "history"


def test_the_history_rule_waits_for_the_minimum_silence():
    quiet_50_min = steady(per_hour=60, quiet_hours=50 / 60)  # 50 messages expected already
    assert assess_silence(quiet_50_min, NOW, 72, 60) is None
    assert assess_silence(quiet_50_min, NOW, 72, 45).rule == "history"


def test_the_history_rule_needs_a_week_of_history():
    assert assess_silence(steady(days=6.9, quiet_hours=5), NOW, 72, 60) is None
    assert assess_silence(steady(days=7.1, quiet_hours=5), NOW, 72, 60).rule == "history"


def test_the_ceiling_flags_any_channel_whatever_its_history():
    young = steady(days=1, per_hour=0, quiet_hours=72)
    assert assess_silence(young, NOW, 72, 60).rule == "ceiling"
    assert assess_silence(young, NOW - 1, 72, 60) is None  # a second short of 72 h
    assert assess_silence(young, NOW, 200, 60) is None  # a per-channel ceiling of 200 h


def test_no_history_unreadable_last_or_ceiling_off_is_never_silent():
    assert assess_silence(None, NOW, 72, 60) is None
    assert assess_silence({}, NOW, 72, 60) is None
    assert assess_silence({"last": "yesterday"}, NOW, 72, 60) is None
    assert assess_silence(steady(quiet_hours=500), NOW, None, 60) is None  # =off


def test_a_channel_with_rows_dated_ahead_is_not_judged():
    entry = dict(steady(quiet_hours=100), ahead=True)
    assert assess_silence(entry, NOW, 72, 60) is None


def test_describe_a_history_silence_with_what_was_expected_and_the_advice():
    silence = Silence(NOW - 2 * HOUR, 20.0, "history")
    text = describe_silence(silence, datetime.fromtimestamp(NOW, timezone.utc))
    assert text.startswith("listed as connected but no inbound message for 2 h (last at "
                           f"{local(NOW - 2 * HOUR)}); it would normally have had about 20 by "
                           "now. ")
    assert text.endswith(SILENT_ADVICE)


def test_describe_a_ceiling_silence_with_nothing_expected_names_the_setting():
    now = datetime.fromtimestamp(NOW, timezone.utc)
    text = describe_silence(Silence(NOW - 80 * HOUR, 0.2, "ceiling"), now)
    assert "for 3 d 8 h" in text and "its ceiling (HEALTHCHECK_SILENT_HOURS) has passed" in text
    # A ceiling silence where its history did expect messages says how many.
    assert "about 3 by now" in describe_silence(Silence(NOW - 80 * HOUR, 3.4, "ceiling"), now)
