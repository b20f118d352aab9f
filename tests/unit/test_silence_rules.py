"""The silence rule and the activity history, fed plain data: no database, no clock."""

import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.activity import ActivityRowError, hourly_counts, learn_activity, to_epoch
from healthcheck.silence import assess_silence

NOW = datetime(2026, 2, 9, 15, 0, tzinfo=timezone.utc).timestamp()
HOUR, DAY = 3600, 86400


def history(times, now=NOW) -> dict:
    learned = learn_activity({}, (("ch", t) for t in times), now, {"ch"})
    return learned["channels"].get("ch")


def silence(times, minutes_later=0, ceiling=72.0, min_minutes=60.0):
    return assess_silence(history(times), NOW + minutes_later * 60, ceiling, min_minutes)


def every(step, since, until=0, now=NOW):
    return [now - since + i * step for i in range(int((since - until) // step) + 1)]


def test_busy_number_is_caught_within_the_hour_not_before():
    # 30 messages an hour for two weeks, the last one now.
    times = every(120, 14 * DAY)
    assert silence(times, minutes_later=59) is None
    caught = silence(times, minutes_later=60)
    assert caught and caught.rule == "history" and caught.expected >= 7


def test_number_with_a_message_a_day_is_never_flagged_before_its_ceiling():
    times = every(DAY, 27 * DAY)  # one a day at 15:00 for four weeks
    for hours in range(1, 72):
        assert silence(times, minutes_later=hours * 60) is None, hours
    assert silence(times, minutes_later=72 * 60).rule == "ceiling"


def test_business_hours_number_is_not_flagged_over_the_night():
    # 20 an hour from 9 to 18 on every day; last message at 18:00, checked at 08:59 next day.
    day0 = datetime(2026, 1, 12, tzinfo=timezone.utc).timestamp()
    times = [day0 + d * DAY + h * HOUR + m * 180 for d in range(28) for h in range(9, 18)
             for m in range(20)]
    last = max(times)
    entry = learn_activity({}, (("ch", t) for t in times), last, {"ch"})["channels"]["ch"]
    assert assess_silence(entry, last + 14 * HOUR + 59 * 60, 72, 60) is None
    # ... but two hours into the next working day, it is.
    assert assess_silence(entry, last + 17 * HOUR, 72, 60).rule == "history"


def test_short_history_waits_for_the_ceiling():
    times = every(120, 5 * DAY)  # busy, but only five days known
    assert silence(times, minutes_later=24 * 60) is None
    assert silence(times, minutes_later=72 * 60).rule == "ceiling"


def test_no_history_is_never_silent_and_off_switches_the_rule_off():
    assert assess_silence(None, NOW, 72, 60) is None
    assert assess_silence({}, NOW, 72, 60) is None
    assert silence(every(120, 14 * DAY), minutes_later=100 * 60, ceiling=None) is None


def test_history_has_a_fixed_size_per_channel():
    learned = learn_activity({}, (("ch", t) for t in every(10, 60 * DAY)), NOW, {"ch"})
    assert len(learned["channels"]["ch"]["counts"].split(",")) <= 28 * 24 + 1


def test_history_skips_what_an_earlier_run_counted_and_unlisted_channels():
    first = learn_activity({}, [("ch", NOW - 100), ("other", NOW - 50)], NOW, {"ch"})
    again = learn_activity(first, [("ch", NOW - 100), ("ch", NOW - 10)], NOW, {"ch"})
    assert set(first["channels"]) == {"ch"}
    assert sum(hourly_counts(again["channels"]["ch"]).values()) == 2
    assert again["since"] == NOW - 10


def test_a_clock_ahead_cannot_hide_a_silence():
    assert history([NOW + 3 * DAY]) is None  # not counted, nor kept as the mark
    assert history([NOW + 60])["last"] == NOW  # a writer's clock a minute fast: counted as now


def test_received_at_forms():
    zone = timezone(timedelta(hours=-3))
    naive = datetime(2026, 2, 9, 12, 0)
    assert to_epoch(naive, zone) == NOW
    assert to_epoch("2026-02-09 12:00:00", zone) == NOW
    assert to_epoch("2026-02-09T15:00:00Z", None) == NOW
    assert to_epoch(int(NOW), None) == NOW
    assert to_epoch(int(NOW) * 1000, None) == NOW  # JavaScript milliseconds
    assert to_epoch(None, None) is None
    for bad in ("soon", True, object()):
        try:
            to_epoch(bad, None)
        except ActivityRowError:
            continue
        raise AssertionError(bad)


def test_hand_edited_history_cannot_break_the_rule():
    odd = {"since": "x", "channels": {"ch": {"first": "?", "last": None,
                                            "base": 5, "counts": "x,-2,²,3"}}}
    learned = learn_activity(odd, [("ch", NOW - 10)], NOW, {"ch"})
    assert learned["channels"]["ch"]["last"] == NOW - 10
    assert assess_silence({"first": "a", "last": NOW - 80 * HOUR, "counts": 7}, NOW, 72, 60)
    assert assess_silence({"first": NOW - 9 * DAY, "last": NOW - 80 * HOUR, "counts": 7},
                             NOW, 72, 60).rule == "ceiling"
