"""healthcheck/plan.py in-process: what each channel gets this run, from plain data.

The listing, the previous incidents, the silences and the time go in; the plan comes out. No
gateway, no clock, no files.
"""

import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.constants import CRITICAL, UNKNOWN, WPPCONNECT_LOGIN_GONE
from healthcheck.model import Channel, Listing, Revival, Silence
from healthcheck.plan import (
    LOOP_ADVICE,
    STUCK_ADVICE,
    PlanPolicy,
    after_revive,
    is_ignored,
    plan_run,
    revive_due,
)

NOW = datetime(2026, 2, 9, 14, 30, tzinfo=timezone(timedelta(hours=-3)))
SILENCE = Silence(last_inbound=NOW.timestamp() - 7200, expected=12.0, rule="history")
#: A gateway that can revive anything (the wrapper's and WAHA's abilities).
PLAIN = PlanPolicy()
#: Evolution's abilities, as the plan sees them.
LOOPING = PlanPolicy(reconnect_loop_words=frozenset({"close", "connecting"}))
#: WPPConnect's: a starting session is never revived, and CLOSED after a start is a lost login.
WPPCONNECT = PlanPolicy(revive_transient=False, lost_login_after_start=frozenset({"CLOSED"}))


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).isoformat(timespec="seconds")


def plan_one(channel: Channel, incident=None, silence=None, policy=PLAIN, force=False):
    """The plan of a listing holding `channel` alone."""
    plan = plan_run(Listing([channel], []), (), {channel.id: incident} if incident else {},
                    {channel.id: silence} if silence else {}, NOW, policy, force)
    [entry] = plan.channels
    return entry


def qr_incident(runs_down: int, last_kick_run: int, kicked=None, status="qr_required",
                outcome="qr_issued") -> dict:
    """An incident whose kicks issued a QR from its first run on; last kicked 15 min ago."""
    return {"since": ago(hours=1), "runs_down": runs_down, "last_status": status,
            "last_kick_outcome": outcome, "last_kick_run": last_kick_run, "qr_since_run": 1,
            "last_kick_at": kicked or ago(minutes=15)}


# -- each action ----------------------------------------------------------------------------------

def test_a_connected_channel_gets_nothing_and_revives_nothing():
    plan = plan_run(Listing([Channel("a", "connected")], []), (), {}, {}, NOW, PlanPolicy(),
                    False)
    assert [p.action for p in plan.channels] == ["none"]
    assert plan.revivals == [] and plan.problems == [] and plan.missing == []


def test_a_silent_connected_channel_is_alerted_or_restarted_as_the_policy_says():
    alerted = plan_one(Channel("a", "connected"), silence=SILENCE)
    assert (alerted.action, alerted.silence) == ("alert_silent", SILENCE)
    channel = Channel("a", "connected")
    plan = plan_run(Listing([channel], []), (), {}, {"a": SILENCE}, NOW,
                    PlanPolicy(restart_silent=True), False)
    assert plan.channels[0].action == "restart_silent"
    assert plan.revivals == [(channel, True)]  # a restart of a connected one


def test_a_stopped_channel_is_revived_at_once():
    channel = Channel("a", "disconnected")
    plan = plan_run(Listing([channel], []), (), {}, {}, NOW, PlanPolicy(), False)
    assert plan.channels[0].action == "kick" and plan.revivals == [(channel, False)]


def test_a_channel_whose_status_read_failed_is_reported_not_revived():
    channel = Channel("a", "(unknown)", "unknown", "its status could not be read")
    entry = plan_one(channel)
    assert (entry.action, entry.detail) == ("unknown", "its status could not be read")


def test_the_gateway_listing_no_channel_is_unknown_unless_channels_are_expected():
    empty = Listing([], [])
    assert plan_run(empty, (), {}, {}, NOW, PlanPolicy(), False).problems[0][0] == UNKNOWN
    plan = plan_run(empty, ("imobsites",), {}, {}, NOW, PlanPolicy(), False)
    assert plan.missing == ["imobsites"]
    assert [state for state, _ in plan.problems] == [CRITICAL]  # no UNKNOWN line besides


def test_expected_channels_are_matched_by_key_and_the_listings_problems_are_kept():
    listing = Listing([Channel("Imob Sites", "connected")], [(UNKNOWN, "entry #2 has no id")])
    plan = plan_run(listing, ("imobsites", "gone"), {}, {}, NOW, PlanPolicy(), False)
    assert plan.missing == ["gone"]
    assert plan.problems[0] == (UNKNOWN, "entry #2 has no id")
    assert "expected channel gone is missing" in plan.problems[1][1]


# -- HEALTHCHECK_IGNORE_CHANNELS ------------------------------------------------------------------

def test_ignore_patterns_match_the_channel_key_shell_style():
    assert is_ignored("Test Bot 7", ("test*",))
    assert is_ignored("imobsites", ("imob?ites",))
    assert not is_ignored("imobsites", ("imob",))
    assert not is_ignored("anything", ())


def test_an_ignored_channel_is_never_revived_nor_missed():
    policy = PlanPolicy(ignore=("test*",))
    listing = Listing([Channel("TestBot", "disconnected"), Channel("b", "disconnected")], [])
    plan = plan_run(listing, ("testgone", "b"), {}, {}, NOW, policy, force=True)
    assert [p.action for p in plan.channels] == ["ignored", "kick"]
    assert plan.missing == [] and [c.id for c, _ in plan.revivals] == ["b"]


# -- the QR backoff -------------------------------------------------------------------------------

def test_a_first_qr_and_a_channel_without_incident_are_due():
    assert revive_due(None, "qr_required", NOW, 6) == (True, "")
    assert revive_due({}, "qr_required", NOW, 6, needs_person=True) == (True, "")


def test_after_a_qr_revives_come_on_runs_2_4_8_of_the_qr_phase():
    due = {run: revive_due(qr_incident(run - 1, last), "qr_required", NOW, 6)[0]
           for run, last in ((2, 1), (3, 2), (4, 2), (5, 4), (7, 4), (8, 4), (9, 8))}
    assert due == {2: True, 3: False, 4: True, 5: False, 7: False, 8: True, 9: False}


def test_a_waiting_qr_says_when_its_next_revive_is_and_that_force_overrides():
    due, why = revive_due(qr_incident(2, 2), "qr_required", NOW, 6)
    assert not due
    assert "next kick on run 4 of the incident or at 2026-02-09 20:15" in why
    assert "--force" in why


def test_the_retry_interval_revives_whatever_the_doubling():
    assert revive_due(qr_incident(20, 16, kicked=ago(hours=6)), "qr_required", NOW, 6)[0]
    assert not revive_due(qr_incident(20, 16, kicked=ago(hours=5)), "qr_required", NOW, 6)[0]
    assert revive_due(qr_incident(20, 16, kicked=ago(hours=2)), "qr_required", NOW, 1)[0]


def test_a_status_change_or_an_unreadable_revive_time_revives_at_once():
    assert revive_due(qr_incident(2, 2), "disconnected", NOW, 6) == (True, "")
    assert revive_due(qr_incident(2, 2, kicked="not a time"), "qr_required", NOW, 6) \
        == (True, "")


def test_outcomes_a_revive_can_fix_are_never_backed_off():
    incident = qr_incident(2, 2, status="disconnected", outcome="reconnect_requested")
    assert revive_due(incident, "disconnected", NOW, 6) == (True, "")


def test_the_plan_waits_on_a_qr_and_force_revives_it():
    channel = Channel("a", "qr_required", "needs_person")
    waiting = plan_one(channel, qr_incident(2, 2))
    assert waiting.action == "wait_qr" and "next kick on run 4" in waiting.detail
    assert plan_one(channel, qr_incident(2, 2), force=True).action == "kick"


def test_a_channel_only_a_gateway_restart_can_load_waits_for_it():
    channel = Channel("a", "(not loaded)")
    entry = plan_one(channel, qr_incident(2, 2, status="(not loaded)",
                                          outcome="restart_gateway"))
    assert entry.action == "wait_restart"
    assert entry.detail.startswith("not connected this run: the gateway's process must be "
                                   "restarted to load it; next kick on run 4")


# -- the starting grace ---------------------------------------------------------------------------

def test_a_starting_session_is_left_alone_for_its_grace():
    incident = {"last_status": "starting", "status_since": ago(minutes=4)}
    entry = plan_one(Channel("a", "starting", "transient"), incident)
    assert entry.action == "wait_grace" and "6 more min" in entry.detail
    # The grace counts from when this status was first seen: a new word restarts it.
    moved = {"last_status": "syncing", "status_since": ago(minutes=40)}
    assert "10 more min" in plan_one(Channel("a", "starting", "transient"), moved).detail


def test_a_session_still_starting_past_its_grace_is_revived_or_reported_stuck():
    incident = {"last_status": "INITIALIZING", "status_since": ago(minutes=40)}
    channel = Channel("a", "INITIALIZING", "transient")
    assert plan_one(channel, incident).action == "kick"
    stuck = plan_one(channel, incident, policy=WPPCONNECT)
    assert stuck.action == "alert_stuck"
    assert "still INITIALIZING after 40 min" in stuck.detail and STUCK_ADVICE in stuck.detail


def test_force_inside_the_grace_revives_quietly_only_where_a_revive_is_safe():
    channel = Channel("a", "starting", "transient")
    forced = plan_one(channel, force=True)
    assert (forced.action, forced.in_grace) == ("kick", True)
    assert plan_one(channel, force=True, policy=WPPCONNECT).action == "wait_grace"


# -- what the gateway's abilities change ----------------------------------------------------------

def test_closed_again_after_its_own_start_is_a_lost_login_for_a_person():
    incident = {"last_status": "CLOSED", "last_kick_outcome": "start_session_requested"}
    entry = plan_one(Channel("a", "CLOSED"), incident, policy=WPPCONNECT)
    assert entry.channel.condition == "needs_person"
    assert WPPCONNECT_LOGIN_GONE in entry.channel.detail
    # Without a start of its own behind it, CLOSED is a plain stop.
    assert plan_one(Channel("a", "CLOSED"), policy=WPPCONNECT).channel.condition == "stopped"


def test_a_reconnect_loop_is_one_transient_incident_graced_from_its_first_sighting():
    channel = Channel("a", "connecting", "transient")
    fresh = {"since": ago(minutes=4), "reason": "down", "last_status": "close"}
    entry = plan_one(channel, fresh, policy=LOOPING)
    assert entry.action == "wait_loop" and "6 more min from its first sighting" in entry.detail
    assert plan_one(channel, fresh, policy=LOOPING, force=True).action == "kick"
    old = dict(fresh, since=ago(minutes=30))
    revived = plan_one(channel, old, policy=LOOPING)
    assert revived.action == "revive_loop" and LOOP_ADVICE in revived.detail
    assert plan_run(Listing([channel], []), (), {"a": old}, {}, NOW, LOOPING,
                    False).revivals == [(channel, False)]


def test_a_loop_revived_once_is_not_revived_again_before_the_retry_interval():
    stuck = {"since": ago(hours=2), "reason": "stuck", "flipping": True,
             "last_status": "connecting", "last_kick_at": ago(hours=1)}
    entry = plan_one(Channel("a", "close"), stuck, policy=LOOPING)
    assert entry.action == "alert_loop" and "not again before HEALTHCHECK_QR_RETRY_HOURS" in \
        entry.detail
    assert plan_one(Channel("a", "close"), stuck, policy=LOOPING, force=True).action \
        == "revive_loop"


# -- after_revive ---------------------------------------------------------------------------------

def test_after_revive_keeps_the_revive_when_nothing_was_read_or_it_is_final():
    revival = Revival("reconnect_requested", "asked")
    assert after_revive(revival, None, PlanPolicy()) is revival
    for final in (Revival("qr_issued", "scan"), Revival("failed", "HTTP 500")):
        assert after_revive(final, Channel("a", "x", "needs_person"), PlanPolicy()) is final
    assert after_revive(revival, Channel("a", "connected"), PlanPolicy()) is revival


def test_a_qr_seen_after_the_revive_goes_to_a_person_now():
    revival = Revival("reconnect_requested", "asked")
    seen = Channel("a", "SCAN_QR_CODE", "needs_person")
    assert after_revive(revival, seen, PlanPolicy()) == Revival(
        "qr_issued", "status SCAN_QR_CODE after the revive: a person must scan a new QR code")
    told = Channel("a", "close", "needs_person", "closed with code 401")
    assert after_revive(revival, told, PlanPolicy()).detail.endswith("closed with code 401")


def test_stopped_again_after_a_start_session_is_a_lost_login():
    revival = Revival("start_session_requested", "started")
    seen = Channel("a", "CLOSED")
    assert after_revive(revival, seen, WPPCONNECT) == Revival(
        "qr_issued", f"stopped again after its start-session: {WPPCONNECT_LOGIN_GONE}")
    assert after_revive(revival, seen, PlanPolicy()) is revival  # not a word of this gateway
    assert after_revive(Revival("reconnect_requested", "x"), seen, WPPCONNECT).outcome \
        == "reconnect_requested"
