"""Stop hammering what a kick cannot fix: after a QR, kicks back off; --force overrides."""

import json
import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.incidents import AlertPolicy, plan_incidents
from healthcheck.model import Channel, ChannelReport, Listing
from healthcheck.plan import PlanPolicy, plan_run, revive_due
from healthcheck.report import Report

START = datetime(2026, 2, 9, 14, 30, tzinfo=timezone(timedelta(hours=-3)))
POLICY = AlertPolicy(alert_after=2, repeat_hours=6)


def kicked_runs(runs: int, status_at=lambda run: "qr_required", retry_hours=6.0) -> list[int]:
    """Drive the pure steps through `runs` cron runs 15 min apart; return the runs that kicked."""
    incidents, kicked = {}, []
    for run in range(1, runs + 1):
        now = START + timedelta(minutes=15 * (run - 1))
        status = status_at(run)
        listing = Listing([Channel("imobsites", status)], [])
        plan = plan_run(listing, (), incidents, {}, now,
                           PlanPolicy(qr_retry_hours=retry_hours), force=False)
        [entry] = plan.channels
        outcome = "qr_issued" if entry.action == "kick" else "qr_pending"
        if entry.action == "kick":
            kicked.append(run)
        report = Report(channels=[ChannelReport("imobsites", status, False, outcome,
                                                      entry.detail)])
        incidents, _, _ = plan_incidents(incidents, report, now, POLICY)
    return kicked


def test_after_a_qr_kicks_follow_runs_2_4_8_16_then_every_6_hours():
    # Runs 1..32 at 15 min; run 32 is 7 h 45 min in, so from there on the 6 h clock is first.
    assert kicked_runs(110) == [1, 2, 4, 8, 16, 32, 56, 80, 104]


def test_a_status_change_kicks_at_once_and_restarts_the_doubling():
    statuses = {run: "qr_required" if run < 11 else "disconnected" for run in range(1, 40)}
    assert kicked_runs(39, statuses.__getitem__) == [1, 2, 4, 8, 11, 12, 14, 18, 26]


def test_a_qr_waiting_channel_says_when_it_will_be_kicked():
    incidents = {"imobsites": {"since": START.isoformat(), "runs_down": 2, "kicks": 2,
                               "last_status": "qr_required", "last_kick_outcome": "qr_issued",
                               "last_kick_run": 2, "qr_since_run": 1,
                               "last_kick_at": START.isoformat()}}
    due, why = revive_due(incidents["imobsites"], "qr_required",
                             START + timedelta(minutes=15), 6)
    assert not due
    assert "next kick on run 4 of the incident or at 2026-02-09 20:30" in why
    assert "--force" in why


def test_force_kicks_whatever_the_schedule():
    incidents = {"imobsites": {"runs_down": 2, "last_status": "qr_required",
                               "last_kick_outcome": "qr_issued", "last_kick_run": 2,
                               "qr_since_run": 1, "last_kick_at": START.isoformat()}}
    listing = Listing([Channel("imobsites", "qr_required")], [])
    assert plan_run(listing, (), incidents, {}, START, PlanPolicy(), force=True).channels[0].action \
        == "kick"
    assert plan_run(listing, (), incidents, {}, START, PlanPolicy(), force=False).channels[0].action \
        == "wait_qr"


def test_other_outcomes_are_kicked_every_run():
    incident = {"runs_down": 5, "last_status": "disconnected",
                "last_kick_outcome": "reconnect_requested", "last_kick_run": 5,
                "last_kick_at": START.isoformat()}
    assert revive_due(incident, "disconnected", START, 6) == (True, "")


# -- the real script ------------------------------------------------------------------------------

def qr_calls(gateway) -> int:
    return len(gateway.calls("qr"))


def test_channel_waiting_for_a_scan_is_not_kicked_on_run_3(run_check, gateway):
    gateway.add_channel("imobsites", "qr_required", "qr")
    assert run_check().code == 2 and qr_calls(gateway) == 1
    assert run_check().code == 2 and qr_calls(gateway) == 2
    run = run_check()
    assert run.code == 2 and qr_calls(gateway) == 2, run.stdout
    assert "imobsites (qr_pending)" in run.first_line
    assert "not kicked this run" in run.stdout and "next kick on run 4" in run.stdout
    assert "not kicked this run" in run.log
    run_check()
    assert qr_calls(gateway) == 3


def test_force_kicks_a_channel_waiting_for_a_scan(run_check, gateway):
    gateway.add_channel("imobsites", "qr_required", "qr")
    run_check()
    run_check()
    run = run_check("--force")
    assert qr_calls(gateway) == 3 and "qr_issued" in run.first_line


def test_status_change_kicks_a_waiting_channel_at_once(run_check, gateway):
    gateway.add_channel("imobsites", "qr_required", "qr")
    run_check()
    run_check()
    gateway.channels["imobsites"].update(status="disconnected", on_kick="reconnect")
    run = run_check()
    assert qr_calls(gateway) == 3 and run.code == 1, run.stdout


def test_dry_run_prints_the_plan_without_kicking(run_check, gateway):
    gateway.add_channel("imobsites", "qr_required", "qr")
    run_check()
    run_check()
    run = run_check("--dry-run", "--json")
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["imobsites"]
    assert (channel["action"], channel["outcome"]) == ("wait_qr", "qr_pending")
    assert qr_calls(gateway) == 2


def test_alerts_and_reminders_are_unchanged_by_the_backoff(run_check, gateway, recorder):
    gateway.add_channel("imobsites", "qr_required", "qr")
    alerting = {"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook"}
    for _ in range(3):
        run_check(env=alerting)
    # The QR is told at once, once; the waiting runs send nothing new until the reminder.
    assert [b["items"][0]["reason"] for b in recorder.json_bodies()] == ["qr"]
