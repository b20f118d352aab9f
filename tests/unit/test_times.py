"""healthcheck/times.py in-process: times kept in the state, and durations told to people."""

import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.times import _duration, _iso, _parse_time

START = datetime(2026, 2, 9, 14, 30, tzinfo=timezone(timedelta(hours=-3)))


def later(**delta) -> datetime:
    return START + timedelta(**delta)


def test_an_aware_time_is_read_back_as_written():
    assert _parse_time("2026-02-09T14:30:00-03:00") == START
    assert _parse_time(START.isoformat()) == START


def test_a_time_without_an_offset_is_not_trusted():
    """A naive time in the state (hand-edited, or another writer) could be any zone: refused."""
    assert _parse_time("2026-02-09T14:30:00") is None


def test_what_is_not_a_time_reads_as_none_never_raises():
    for value in (None, "", "soon", 5, 1.5, [], {"since": "x"}, "2026-13-40T00:00:00+00:00"):
        assert _parse_time(value) is None, value


def test_iso_is_local_time_with_its_offset_and_reads_back_to_the_same_instant():
    epoch = START.timestamp()
    text = _iso(epoch)
    parsed = _parse_time(text)
    assert parsed is not None and parsed.utcoffset() is not None
    assert parsed.timestamp() == epoch
    assert len(text) == len("2026-02-09T17:30:00+00:00")  # to the second, never microseconds


def test_iso_drops_fractions_of_a_second():
    assert _parse_time(_iso(START.timestamp() + 0.9)).timestamp() == START.timestamp()


def test_duration_under_an_hour_is_minutes():
    assert _duration(START, later(minutes=45)) == "45 min"
    assert _duration(START, later(seconds=59)) == "0 min"  # whole minutes, cut down


def test_duration_of_whole_hours_says_no_minutes():
    assert _duration(START, later(hours=1)) == "1 h"
    assert _duration(START, later(hours=3, minutes=10)) == "3 h 10 min"


def test_duration_stays_in_hours_up_to_two_days():
    assert _duration(START, later(hours=47, minutes=59)) == "47 h 59 min"
    assert _duration(START, later(hours=48)) == "2 d 0 h"
    assert _duration(START, later(days=9, hours=5, minutes=59)) == "9 d 5 h"


def test_duration_of_an_unknown_start_or_a_clock_gone_back():
    assert _duration(None, START) == "an unknown time"
    assert _duration(later(minutes=30), START) == "0 min"  # never negative


def test_duration_compares_instants_across_zones():
    utc_end = (START + timedelta(minutes=90)).astimezone(timezone.utc)
    assert _duration(START, utc_end) == "1 h 30 min"
