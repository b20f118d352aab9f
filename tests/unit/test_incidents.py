"""healthcheck/incidents.py in-process: incidents across runs, flapping, and the alert text.

Each run is a Report built by hand and a time; the incident table is passed from one call to
the next as the state file would carry it. No gateway, no clock, no files.
"""

import json
import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.constants import (
    ACTIVITY_KEY,
    CRITICAL,
    GATEWAY_KEY,
    MAX_ALERT_BYTES,
    MAX_ALERT_ITEMS,
    OK,
    UNKNOWN,
    WARNING,
)
from healthcheck.incidents import (
    AlertPolicy,
    compose_alert,
    plan_flaps,
    plan_incidents,
    repaired_drops,
)
from healthcheck.model import ChannelReport, Silence
from healthcheck.report import Report

NOW = datetime(2026, 2, 9, 14, 30, tzinfo=timezone(timedelta(hours=-3)))
POLICY = AlertPolicy(alert_after=2, repeat_hours=6)
GATEWAY_DOWN = Report(error="gateway unreachable", error_state=CRITICAL, gateway_failed=True)


def at(minutes: float = 0) -> datetime:
    return NOW + timedelta(minutes=minutes)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def report(*channels: ChannelReport, **fields) -> Report:
    return Report(channels=list(channels), **fields)


def down(channel_id="a", outcome="reconnect_requested", **fields) -> ChannelReport:
    return ChannelReport(channel_id, "disconnected", False, outcome, **fields)


def up(channel_id="a", **fields) -> ChannelReport:
    return ChannelReport(channel_id, "connected", True, **fields)


def runs(reports, policy=POLICY, every=15, incidents=None):
    """Feed one report per cron run, `every` minutes apart; return the table and each run's
    alert item kinds."""
    incidents, kinds = incidents or {}, []
    for number, one in enumerate(reports):
        incidents, items, _ = plan_incidents(incidents, one, at(number * every), policy)
        kinds.append([item["kind"] for item in items])
    return incidents, kinds


# -- plan_incidents -------------------------------------------------------------------------------

def test_a_down_channel_alerts_after_alert_after_runs():
    incidents, kinds = runs([report(down())] * 4, AlertPolicy(alert_after=3, repeat_hours=6))
    assert kinds == [[], [], ["alert"], []]
    assert incidents["a"]["runs_down"] == 4 and incidents["a"]["kicks"] == 4
    assert incidents["a"]["reason"] == "down" and incidents["a"]["since"] == iso(NOW)


def test_a_qr_alerts_at_once_with_what_a_person_needs():
    _, items, _ = plan_incidents({}, report(down(outcome="qr_issued")), NOW, POLICY)
    [item] = items
    assert (item["kind"], item["subject"], item["id"], item["reason"]) == \
        ("alert", "channel", "a", "qr")
    assert (item["runs_down"], item["kicks"], item["outcome"]) == (1, 1, "qr_issued")


def test_reminders_follow_repeat_hours_and_zero_switches_them_off():
    qr = report(down(outcome="qr_issued"))
    _, kinds = runs([qr] * 26)  # 6 h 15 min at */15
    assert [k for k in kinds if k] == [["alert"], ["reminder"]] and kinds[24] == ["reminder"]
    _, kinds = runs([qr] * 26, AlertPolicy(alert_after=2, repeat_hours=0))
    assert [k for k in kinds if k] == [["alert"]]


def test_a_hand_edited_alert_time_restarts_the_reminder_clock_without_a_flood():
    edited = {"a": {"since": iso(at(-600)), "runs_down": 40, "kicks": 40, "reason": "down",
                    "alerted_at": "sometime", "last_alert_at": None}}
    incidents, items, _ = plan_incidents(edited, report(down()), NOW, POLICY)
    assert items == [] and incidents["a"]["last_alert_at"] == iso(NOW)


def test_a_starting_session_inside_its_grace_is_tracked_but_never_alerted():
    incidents, kinds = runs([report(down(outcome="in_grace"))] * 4)
    assert kinds == [[], [], [], []] and incidents["a"]["runs_down"] == 4


def test_a_channel_whose_read_failed_keeps_its_incident_as_it_was():
    before, _ = runs([report(down())])
    after, items, notes = plan_incidents(before, report(down(outcome="unknown")), at(15),
                                         POLICY)
    assert after == before and items == [] and notes == []


def test_recovery_closes_with_a_note_and_a_resolved_item_once_alerted():
    incidents, _ = runs([report(down())] * 2)
    closed, items, notes = plan_incidents(incidents, report(up()), at(45), POLICY)
    assert closed == {}
    assert [(i["kind"], i["how"], i["lasted"]) for i in items] == \
        [("resolved", "recovered", "45 min")]
    assert notes == [(OK, "channel a recovered after 45 min (2 kicks, 2 runs down)")]
    # Never alerted: closed with a note, no message.
    quiet, _ = runs([report(down())])
    _, items, notes = plan_incidents(quiet, report(up()), at(15), POLICY)
    assert items == [] and notes[0][1].startswith("channel a recovered after 15 min")


def test_a_kick_verified_reconnected_counts_the_run_and_its_kick():
    incidents, _ = runs([report(down())])
    _, _, notes = plan_incidents(incidents, report(down(verified="reconnected")), at(15),
                                 POLICY)
    assert notes == [(OK, "channel a reconnected after 15 min (2 kicks, 2 runs down)")]
    table, _, notes = plan_incidents({}, report(down(verified="reconnected")), NOW, POLICY)
    assert table == {} and notes == [(OK, "channel a reconnected after its kick")]


def test_the_gateway_failing_is_its_own_incident_and_the_channels_stay_as_they_were():
    channels, _ = runs([report(down())])
    incidents, kinds = runs([GATEWAY_DOWN, GATEWAY_DOWN], incidents=channels)
    assert kinds == [[], ["alert"]]
    assert incidents["a"] == channels["a"]
    assert incidents[GATEWAY_KEY]["reason"] == "gateway unreachable"
    closed, items, notes = plan_incidents(incidents, report(down()), at(30), POLICY)
    assert GATEWAY_KEY not in closed
    # The runs the gateway failed did not count for the channel: this is its second run down.
    assert [(i["kind"], i["subject"], i["id"]) for i in items] == \
        [("resolved", "gateway", None), ("alert", "channel", "a")]
    assert closed["a"]["runs_down"] == 2
    assert notes[0] == (OK, "the gateway answers again after 30 min (0 kicks, 2 runs down)")


def test_a_run_stopped_before_the_gateway_was_asked_changes_no_channel():
    incidents, _ = runs([report(down())])
    after, items, _ = plan_incidents(incidents, Report(error="locked", error_state=UNKNOWN),
                                     at(15), POLICY)
    assert after == incidents and items == []


def test_a_silent_channel_alerts_at_once_and_its_length_counts_from_the_last_message():
    silence = Silence(NOW.timestamp() - 2 * 3600, 12.3, "history")
    silent = up("s", outcome="silent", silence=silence)
    incidents, items, _ = plan_incidents({}, report(silent), NOW, POLICY)
    assert [(i["kind"], i["reason"], i["expected_inbound"]) for i in items] == \
        [("alert", "silent", 12.3)]
    # While the activity source fails, a silence cannot be seen to end.
    kept, items, _ = plan_incidents(incidents, report(up("s"), activity_read=False), at(15),
                                    POLICY)
    assert "s" in kept and ACTIVITY_KEY in kept and items == []
    closed, items, notes = plan_incidents(incidents, report(up("s"), activity_read=True),
                                          at(60), POLICY)
    assert closed == {} and items[0]["how"] == "receives messages again"
    assert notes == [(OK, "channel s receives messages again after 3 h (0 kicks, 1 run down)")]


def test_an_ignored_or_unlisted_channel_closes_its_incident():
    incidents, _ = runs([report(down(), down("b"))] * 2)
    ignored = down(action="ignored")
    after, items, notes = plan_incidents(incidents, report(ignored, up("c")), at(30), POLICY)
    assert after == {}
    assert {i["id"]: i["kind"] for i in items} == {"a": "resolved", "b": "resolved"}
    assert any("is ignored now" in text for _, text in notes)
    assert any("channel b is no longer listed" in text for _, text in notes)
    # A listing of nothing at all closes nothing: it proves nothing about them.
    kept, _, _ = plan_incidents(incidents, Report(), at(30), POLICY)
    assert set(kept) == {"a", "b"}


def test_an_expected_channel_missing_opens_a_missing_incident():
    incidents, kinds = runs([Report(missing_expected=["imobsites"])] * 2)
    assert kinds == [[], ["alert"]] and incidents["imobsites"]["reason"] == "missing"


# -- flapping -------------------------------------------------------------------------------------

def test_an_expected_channel_listed_again_under_another_spelling_is_back_not_gone():
    # The missing incident is keyed "imobsites" (the setting's name); the gateway lists
    # "Imob Sites", which is the same channel (channel_key), connected.
    incidents, _, _ = plan_incidents({}, Report(missing_expected=["imobsites"]), at(), POLICY)
    incidents, _, notes = plan_incidents(incidents, report(up("Imob Sites")), at(15),
                                         POLICY)
    assert "imobsites" not in incidents
    assert notes[0][1].startswith("channel imobsites is listed again after 15 min")


def drop_runs(hours, threshold=4, flaps=None):
    """One repaired drop 15 min before each run at `hours` after NOW; the runs' alert kinds."""
    flaps, kinds = flaps or {}, []
    for hour in hours:
        now = at(hour * 60)
        flaps, items, _ = plan_flaps(flaps, {"a": iso(now - timedelta(minutes=15))}, now,
                                     threshold)
        kinds.append([item["kind"] for item in items])
    return flaps, kinds


def test_four_repaired_drops_within_a_day_are_told_once():
    flaps, kinds = drop_runs([0, 2, 4, 6, 8])
    assert kinds == [[], [], [], ["alert"], []]
    assert flaps["a"]["count"] == 5 and len(flaps["a"]["drops"]) == 4  # bounded by threshold
    assert flaps["a"]["first"] == iso(at(-15))


def test_a_drop_seen_twice_is_counted_once():
    flaps, _ = drop_runs([0, 2])
    again, _, _ = plan_flaps(flaps, {"a": flaps["a"]["drops"][-1]}, at(180), 4)
    assert again["a"]["count"] == 2


def test_flapping_reminds_once_a_day_and_resolves_after_a_quiet_day():
    flaps, _ = drop_runs([0, 2, 4, 6])  # alerted at +6 h
    _, kinds = drop_runs([20], flaps=flaps)
    assert kinds == [[]]
    _, kinds = drop_runs([30], flaps=flaps)
    assert kinds == [["reminder"]]
    gone, items, notes = plan_flaps(flaps, {}, at(32 * 60), 4)
    assert gone == {} and [i["kind"] for i in items] == ["resolved"]
    assert notes[0][1].startswith("channel a stopped dropping: no drop since ")


def test_a_channel_not_flapping_is_forgotten_after_a_day_and_zero_switches_it_off():
    old = {"b": {"drops": [iso(at(-30 * 60))], "count": 1, "first": iso(at(-30 * 60))}}
    assert plan_flaps(old, {}, NOW, 4) == ({}, [], [])
    assert plan_flaps(old, {"b": iso(NOW)}, NOW, 0) == ({}, [], [])


def test_repaired_drops_are_the_down_channels_connected_again():
    previous = {"a": {"reason": "down", "since": iso(at(-15))}, "q": {"reason": "qr"},
                "s": {"reason": "silent"}}
    drops = repaired_drops(previous, report(
        up("a"), up("q"), up("s"), up("fresh"), down("n", verified="reconnected"),
        down("i", verified="reconnected", action="ignored")), NOW)
    assert drops == {"a": iso(at(-15)), "n": iso(NOW)}


# -- compose_alert --------------------------------------------------------------------------------

def item(kind="alert", channel_id="a", reason="down", **fields) -> dict:
    return {"kind": kind, "subject": "channel", "id": channel_id, "reason": reason,
            "since": "2026-02-09T14:00:00-03:00", "runs_down": 2, "kicks": 2,
            "status": "disconnected", "outcome": "reconnect_requested", **fields}


def test_one_message_lists_the_open_items_then_the_resolved():
    gateway = {"kind": "alert", "subject": "gateway", "id": None, "reason": "unreachable",
               "since": "x", "runs_down": 3, "kicks": 0}
    message = compose_alert([item(), item("reminder", "b", "qr"),
                             item("resolved", "c", lasted="45 min", how="recovered"), gateway],
                            OK, "host1", "run9", NOW)
    assert message["text"].splitlines() == [
        "WhatsApp sessions WARNING on host1:",
        "- a: still not connected, status disconnected, last kick reconnect_requested (since "
        "2026-02-09T14:00:00-03:00, 2 runs, 2 kicks)",
        "- b: a person must scan a new QR code in the panel now (since "
        "2026-02-09T14:00:00-03:00, 2 runs, 2 kicks) (reminder)",
        "- the gateway is failing (since x, 3 runs, 0 kicks): unreachable",
        "Resolved:",
        "- c: recovered (was down 45 min, 2 kicks)"]
    assert [i["id"] for i in message["items"]] == ["a", "b", None, "c"]
    assert (message["host"], message["run_id"], message["sent_at"], message["more_items"]) == \
        ("host1", "run9", iso(NOW), 0)


def test_the_level_is_the_runs_state_at_least_warning_or_resolved():
    assert compose_alert([item()], OK, "h", "r", NOW)["state"] == "WARNING"
    assert compose_alert([item()], CRITICAL, "h", "r", NOW)["state"] == "CRITICAL"
    assert compose_alert([item()], WARNING, "h", "r", NOW)["state"] == "WARNING"
    resolved = item("resolved", lasted="1 h", how="recovered")
    assert compose_alert([resolved], CRITICAL, "h", "r", NOW)["state"] == "RESOLVED"


def test_an_id_or_host_cannot_forge_a_line_of_the_message():
    message = compose_alert([item(channel_id="evil\n- forged line\r")], WARNING, "ho\nst", "r",
                            NOW)
    lines = message["text"].splitlines()
    assert len(lines) == 2 and lines[0] == "WhatsApp sessions WARNING on ho?st:"
    assert lines[1].startswith("- evil?- forged line?: still not connected")


def test_each_reason_says_what_a_person_does():
    text = compose_alert([
        item(reason="silent", status="connected", last_inbound_at="T", expected_inbound=12.3),
        item(channel_id="m", reason="missing"),
        item(channel_id="st", reason="stuck", status="INITIALIZING"),
        item(channel_id="rs", reason="restart"),
        item(channel_id="fl", reason="flapping", drops=5, last_drop_at="L")],
        WARNING, "h", "r", NOW)["text"]
    assert "- a: connected but silent: no inbound message since T, where it would normally " \
           "have had about 12." in text
    assert "- m: missing from the gateway's list" in text
    assert "- st: stuck INITIALIZING: the gateway's own start never finished" in text
    assert "- rs: the gateway's process has not loaded it" in text
    assert "- fl: keeps dropping: 5 times since 2026-02-09T14:00:00-03:00, last at L" in text


def test_a_flood_of_items_is_cut_and_counted():
    message = compose_alert([item(channel_id=f"c{i}") for i in range(MAX_ALERT_ITEMS + 10)],
                            WARNING, "h", "r", NOW)
    assert len(message["items"]) == MAX_ALERT_ITEMS and message["more_items"] == 10
    assert message["text"].splitlines()[-1] == "... and 10 more (see the log)"


def test_a_message_never_outgrows_its_byte_limit():
    huge = [item(channel_id=f"c{i}", status="s" * 5000, extra="x" * 5000) for i in range(60)]
    message = compose_alert(huge, WARNING, "h", "r", NOW)
    assert len(json.dumps(message)) <= MAX_ALERT_BYTES
    assert 1 <= len(message["items"]) < 60
    assert message["more_items"] == 60 - len(message["items"])
