"""Deadline, run lock and --dry-run (healthcheck issue, 7-8)."""

import fcntl
import json

import pytest
from gateway_simulator import Fault


def test_trickling_list_answer_cannot_outlast_the_deadline(run_check, gateway):
    gateway.set_fault("list", Fault("trickle", body=b"x" * 500, interval=0.5))
    run = run_check(env={"HEALTHCHECK_LIST_TIMEOUT": "600", "HEALTHCHECK_DEADLINE": "3"},
                    timeout=30)
    assert run.code == 2
    assert "(HEALTHCHECK_DEADLINE)" in run.first_line


def test_trickling_list_answer_is_bounded_by_the_list_timeout(run_check, gateway):
    gateway.set_fault("list", Fault("trickle", body=b"x" * 500, interval=0.5))
    run = run_check(env={"HEALTHCHECK_LIST_TIMEOUT": "2"}, timeout=30)
    assert run.code == 2
    assert "within 2s (HEALTHCHECK_LIST_TIMEOUT)" in run.first_line


def test_silent_list_call_times_out_critical(run_check, gateway):
    gateway.set_fault("list", Fault("hang"))
    run = run_check(env={"HEALTHCHECK_LIST_TIMEOUT": "1"}, timeout=30)
    assert run.code == 2
    assert "no complete answer" in run.first_line and "HEALTHCHECK_LIST_TIMEOUT" in run.log


@pytest.mark.parametrize("workers", [1, 4])
def test_kicks_that_cannot_finish_in_time_fail_with_deadline(run_check, gateway, workers):
    for number in range(6):
        gateway.add_channel(f"c{number}", "disconnected")
    gateway.set_fault("qr", Fault("hang"))
    run = run_check("--json", env={"HEALTHCHECK_DEADLINE": "3", "HEALTHCHECK_QR_TIMEOUT": "60",
                                   "HEALTHCHECK_WORKERS": str(workers)}, timeout=30)
    report = json.loads(run.stdout)
    assert run.code == 2
    down = [c for c in report["channels"] if not c["connected"]]
    # Calls cut short were made (failed); those never started are not_called, never counted.
    assert len(down) == 6 and sorted(c["outcome"] for c in down) == \
        ["failed"] * workers + ["not_called"] * (6 - workers)
    assert all("deadline" in c["detail"].lower() for c in down)
    # The run ended on time: kicks that could not start were not started.
    assert gateway.count("qr") == workers


def test_run_finding_the_lock_held_makes_no_gateway_call_and_is_unknown(run_check, gateway,
                                                                        home):
    (home / "logs").mkdir()
    with open(home / "logs" / "healthcheck-sessions.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run = run_check()
    assert run.code == 3
    assert "another run is in progress" in run.first_line
    assert gateway.requests == []
    assert "another run is in progress" in run.log


def test_dry_run_sends_no_qr_and_writes_nothing(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected", "not_started")
    run = run_check("--dry-run", "--json")
    report = json.loads(run.stdout)
    assert run.code == 1 and report["dry_run"] is True
    assert [c["outcome"] for c in report["channels"]] == [None, "would_reconnect"]
    assert gateway.calls("qr") == [] and gateway.calls("start") == []
    assert not (home / "logs").exists()


def test_dry_run_does_not_wait_for_the_lock(run_check, gateway, home):
    (home / "logs").mkdir()
    with open(home / "logs" / "healthcheck-sessions.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run = run_check("--dry-run")
    assert run.code == 0
    assert gateway.count("list") == 1


def test_dry_run_with_a_qr_pending_is_computed_as_accepted(run_check, gateway):
    gateway.add_channel("imobsites", "qr_required", "qr")
    run = run_check("--dry-run")
    assert run.code == 1
    assert "imobsites (would_reconnect)" in run.first_line
