"""healthcheck/activity.py in-process: the inbound-message history, learned from plain rows.

Rows are (channel key, epoch seconds) pairs as the database step yields them; the time is
passed in. No database, no clock.
"""

import copy
import math
import sys
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.activity import (
    ActivityRowError,
    cap_history,
    hourly_counts,
    is_usable_time,
    learn_activity,
    naive_time,
    to_epoch,
)

HOUR, DAY = 3600, 86400
NOW = datetime(2026, 2, 9, 15, 0, tzinfo=timezone.utc).timestamp()


# -- received_at values ---------------------------------------------------------------------------

def test_text_bytes_and_decimal_times_are_read():
    assert to_epoch(b"2026-02-09T15:00:00Z", None) == NOW
    assert to_epoch(" 1770649200.5 ", None) == NOW + 0.5  # epoch seconds as text
    assert to_epoch(Decimal(1770649200), None) == NOW  # what MySQL drivers return
    assert to_epoch(NOW * 1000, None) == NOW  # JavaScript's milliseconds


def test_a_naive_time_in_the_hour_a_clock_change_repeats_is_read_by_its_pass():
    zoneinfo = pytest.importorskip("zoneinfo")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    repeated = datetime(2025, 10, 26, 2, 30)  # 03:00 CEST went back to 02:00 CET
    assert to_epoch(repeated, berlin, fold=1) - to_epoch(repeated, berlin, fold=0) == HOUR


def test_an_integer_too_large_for_any_date_is_nan_and_not_usable():
    value = to_epoch(10 ** 400, None)
    assert math.isnan(value) and not is_usable_time(value, NOW)


@pytest.mark.parametrize("bad", ["soon", b"later", True, [1], object()])
def test_what_is_not_a_time_raises_the_row_error(bad):
    with pytest.raises(ActivityRowError):
        to_epoch(bad, None)


def test_naive_time_tells_local_times_from_epoch_text_and_aware_times():
    assert naive_time("2026-02-09 12:00") == datetime(2026, 2, 9, 12, 0)
    assert naive_time(b"2026-02-09 12:00") == datetime(2026, 2, 9, 12, 0)
    assert naive_time("1770649200") is None  # epoch seconds, in no zone
    assert naive_time("2026-02-09T12:00Z") is None  # it has its zone
    assert naive_time(datetime(2026, 2, 9, tzinfo=timezone.utc)) is None


def test_usable_times_are_finite_real_numbers_at_most_a_day_ahead():
    assert is_usable_time(NOW - DAY, NOW) and is_usable_time(NOW + 25 * HOUR, NOW)
    for bad in (NOW + 27 * HOUR, math.nan, math.inf, -1, True, "1770649200", None):
        assert not is_usable_time(bad, NOW), bad


# -- learn_activity -------------------------------------------------------------------------------

def test_rows_are_counted_by_hour_from_the_first_hour_with_a_message():
    rows = [("a", NOW - 3 * HOUR + 10), ("a", NOW - 3 * HOUR + 20), ("a", NOW - HOUR + 5)]
    entry = learn_activity({}, rows, NOW, {"a"})["channels"]["a"]
    assert entry["counts"] == "2,,1"  # an hour without a message is empty
    assert entry["base"] == int((NOW - 3 * HOUR) // HOUR)
    assert (entry["first"], entry["last"]) == (NOW - 3 * HOUR + 10, NOW - HOUR + 5)
    assert hourly_counts(entry) == {entry["base"]: 2, entry["base"] + 2: 1}


def test_the_previous_history_is_not_changed():
    previous = learn_activity({}, [("a", NOW - HOUR)], NOW, {"a"})
    kept = copy.deepcopy(previous)
    learn_activity(previous, [("a", NOW - 60), ("b", NOW - 30)], NOW, {"a", "b"})
    assert previous == kept


def test_rows_at_or_before_the_mark_are_not_counted_twice():
    first = learn_activity({}, [("a", NOW - HOUR)], NOW, {"a"})
    assert first["since"] == NOW - HOUR
    again = learn_activity(first, [("a", NOW - HOUR), ("a", NOW - 60)], NOW, {"a"})
    assert sum(hourly_counts(again["channels"]["a"]).values()) == 2
    assert again["since"] == NOW - 60


def test_unusable_and_ahead_rows_are_tallied_and_an_ahead_channel_is_flagged():
    tally = {}
    rows = [("a", NOW - HOUR), ("a", NOW + 10 * 60), ("a", NOW + 2 * DAY), ("a", math.nan)]
    learned = learn_activity({}, rows, NOW, {"a"}, tally=tally)
    assert tally == {"unusable": 2, "ahead": 1, "ahead_by": 600.0}
    entry = learned["channels"]["a"]
    assert entry["ahead"] is True and entry["last"] == NOW - HOUR
    assert learned["since"] == NOW - HOUR  # a row ahead never becomes the mark


def test_a_row_a_few_minutes_ahead_counts_as_now():
    entry = learn_activity({}, [("a", NOW + 60)], NOW, {"a"})["channels"]["a"]
    assert entry["last"] == NOW and "ahead" not in entry


def test_rows_of_channels_neither_listed_nor_expected_nor_known_are_ignored():
    learned = learn_activity({}, [("a", NOW - 60), ("stranger", NOW - 60)], NOW, {"a"},
                             expected=["later"])
    assert set(learned["channels"]) == {"a"}


def test_an_unlisted_channel_keeps_its_history_four_weeks_or_while_expected():
    learned = learn_activity({}, [("a", NOW - HOUR)], NOW, {"a"})
    gone = learn_activity(learned, [], NOW + 60, set())
    assert gone["channels"]["a"]["unlisted_since"] == NOW + 60
    assert learn_activity(gone, [], NOW + 29 * DAY, set())["channels"] == {}
    kept = learn_activity(gone, [], NOW + 29 * DAY, set(), expected=["a"])
    assert kept["channels"]["a"]["last"] == NOW - HOUR
    back = learn_activity(gone, [], NOW + DAY, {"a"})
    assert "unlisted_since" not in back["channels"]["a"]


def test_hourly_counts_skip_what_a_hand_edit_broke():
    assert hourly_counts({"base": 10, "counts": "1,,3,x,-2,0,5,²"}) == {10: 1, 12: 3, 16: 5}
    assert hourly_counts({"base": True, "counts": "1"}) == {}
    assert hourly_counts({"base": 1.0, "counts": "1"}) == {}
    assert hourly_counts({}) == {}


# -- cap_history ----------------------------------------------------------------------------------

def test_the_cap_drops_the_longest_unlisted_first_then_the_oldest_heard_from():
    history = {"since": NOW, "channels": {
        "gone5": {"first": 1.0, "last": NOW - 10 * DAY, "unlisted_since": NOW - 5 * DAY},
        "gone6": {"first": 1.0, "last": NOW - 9 * DAY, "unlisted_since": NOW - 6 * DAY},
        "quiet": {"first": 1.0, "last": NOW - 20 * DAY},
        "busy": {"first": 1.0, "last": NOW}}}
    capped, dropped = cap_history(history, 1)
    assert (list(capped["channels"]), dropped) == (["gone5", "quiet", "busy"], 1)
    assert capped["since"] == NOW  # the mark stays: nothing is counted twice
    capped, _ = cap_history(capped, 1)
    assert list(capped["channels"]) == ["quiet", "busy"]
    capped, _ = cap_history(capped, 1)
    assert list(capped["channels"]) == ["busy"]
    everything, dropped = cap_history(history, 10 ** 6)
    assert everything["channels"] == {} and dropped == 4
    assert list(history["channels"]) == ["gone5", "gone6", "quiet", "busy"]  # not changed
