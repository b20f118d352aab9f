"""Incidents across runs, verified kicks, alerts and the dead man's switch (never-silent issue)."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from conftest import COMMAND_NAME, SECRET, free_port
from gateway_simulator import Fault, html_fault, json_fault


def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


def shift_alert_times(home, hours: float) -> None:
    """Make every incident's alerts look `hours` older: drives time through the state."""
    path = home / "logs" / "healthcheck-state.json"
    state = json.loads(path.read_text())
    for incident in state["incidents"].values():
        for key in ("since", "alerted_at", "last_alert_at"):
            if incident.get(key):
                then = datetime.fromisoformat(incident[key]) - timedelta(hours=hours)
                incident[key] = then.isoformat(timespec="seconds")
    path.write_text(json.dumps(state))


@pytest.fixture
def alerting(recorder):
    """Settings that send alerts to the recorder as a webhook."""
    return {"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hooks/T000/B000/tok3nXYZ"}


# -- state across runs ----------------------------------------------------------------------------

def test_state_records_the_incident_of_a_channel_that_stays_down(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    run_check()
    incident = state_of(home)["incidents"]["imobsites"]
    assert incident["runs_down"] == 2 and incident["kicks"] == 2
    assert incident["last_outcome"] == "reconnect_requested"
    assert datetime.fromisoformat(incident["since"]).tzinfo is not None


def test_gateway_incident_is_kept_too(run_check, gateway, home):
    gateway.set_fault("list", html_fault(502))
    run_check()
    assert state_of(home)["watchdog_incidents"]["gateway"]["runs_down"] == 1


@pytest.mark.parametrize("content", ["{not json", '{"incidents": {"a": 1', "", "[]"])
def test_corrupt_or_truncated_state_is_moved_aside_and_the_run_goes_on(run_check, gateway, home,
                                                                       content):
    gateway.add_channel("imobsites", "disconnected")
    (home / "logs").mkdir()
    (home / "logs" / "healthcheck-state.json").write_text(content)
    run = run_check()
    assert run.code == 1, run.stdout
    assert gateway.channels["imobsites"]["status"] == "connected"
    aside = list((home / "logs").glob("healthcheck-state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content
    assert "was unreadable" in run.log and "moved aside" in run.log
    assert "imobsites" in state_of(home)["incidents"]


def test_unwritable_state_file_is_named_and_the_kick_is_made(run_check, gateway,
                                                               not_a_folder):
    gateway.add_channel("imobsites", "disconnected")
    run = run_check(env={"HEALTHCHECK_STATE_FILE": str(not_a_folder / "state.json")})
    assert run.code == 1  # the kick's WARNING outranks the state file's UNKNOWN
    assert "cannot write the state file" in run.stdout
    assert gateway.channels["imobsites"]["status"] == "connected"
    assert "cannot write the state file" in run.stdout and "cannot write the state file" in run.log
    assert "Traceback" not in run.stderr


def test_leftover_temporary_file_of_a_killed_write_is_ignored(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    (home / "logs" / "healthcheck-state.json.tmp").write_text('{"incidents": {"half')
    run_check()
    assert state_of(home)["incidents"]["imobsites"]["runs_down"] == 2


def test_run_killed_mid_run_leaves_a_usable_state_file(run_check, gateway, home, tmp_path):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    before = state_of(home)
    gateway.set_fault("qr", Fault("hang"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WPP_", "HEALTHCHECK_"))}
    process = subprocess.Popen([sys.executable, str(home / COMMAND_NAME)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not gateway.calls("qr")[1:] and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state_of(home) == before
    gateway.faults.clear()
    assert run_check().code == 1
    assert state_of(home)["incidents"]["imobsites"]["runs_down"] == 2


# -- verify the kick ---------------------------------------------------------------------------

def test_kicked_channel_is_verified_reconnected(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected")
    run = run_check("--json", env={"HEALTHCHECK_VERIFY_SECONDS": "0.2"})
    report = json.loads(run.stdout)
    channel = next(c for c in report["channels"] if c["id"] == "imobsites")
    assert channel["verified"] == "reconnected"
    assert gateway.count("list") == 2
    assert "reconnect_requested, reconnected" in run.log
    assert "imobsites" not in state_of(home)["incidents"]


def test_kicked_channel_that_stays_down_is_verified_still_down(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run = run_check(env={"HEALTHCHECK_VERIFY_SECONDS": "0.2"})
    assert run.code == 1
    assert "imobsites (reconnect_requested, still_down)" in run.first_line
    assert "reconnect_requested, still_down" in run.log


def test_verification_is_off_with_zero(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    run_check(env={"HEALTHCHECK_VERIFY_SECONDS": "0"})
    assert gateway.count("list") == 1


# -- recovery ----------------------------------------------------------------------------------

def test_recovery_is_logged_in_an_all_connected_run(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    run_check()
    gateway.channels["imobsites"]["status"] = "connected"
    run = run_check()
    assert run.code == 0 and run.stdout == ""
    [line] = [l for l in run.log.splitlines() if "recovered after" in l]
    assert " OK " in line
    assert "channel imobsites recovered after 0 min (2 kicks, 2 runs down)" in line


# -- escalation --------------------------------------------------------------------------------

def test_alert_goes_out_after_n_runs_and_not_before(run_check, gateway, recorder, alerting):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check(env=alerting)
    assert recorder.requests == []
    run_check(env=alerting)
    [alert] = recorder.json_bodies()
    assert alert["text"].startswith("WhatsApp sessions WARNING on ")
    assert "imobsites: still not connected" in alert["text"]
    assert alert["items"][0]["id"] == "imobsites" and alert["items"][0]["runs_down"] == 2
    run_check(env=alerting)
    assert len(recorder.requests) == 1  # one alert per incident, not one per run


def test_qr_alert_goes_out_at_once(run_check, gateway, recorder, alerting):
    gateway.add_channel("imobsites", "disconnected", "qr")
    run = run_check(env=alerting)
    assert run.code == 2
    [alert] = recorder.json_bodies()
    assert "imobsites: a person must scan a new QR code" in alert["text"]
    assert alert["state"] == "CRITICAL"
    assert "alert sent to webhook" in run.log


def test_several_channels_make_one_message(run_check, gateway, recorder, alerting):
    for name in ("a", "b", "c"):
        gateway.add_channel(name, "disconnected", "qr")
    run_check(env=alerting)
    [alert] = recorder.json_bodies()
    assert [i["id"] for i in alert["items"]] == ["a", "b", "c"]


def test_reminder_after_the_repeat_interval(run_check, gateway, recorder, alerting, home):
    gateway.add_channel("imobsites", "disconnected", "qr")
    run_check(env=alerting)
    run_check(env=alerting)
    assert len(recorder.requests) == 1
    shift_alert_times(home, hours=6.5)
    run_check(env=alerting)
    assert len(recorder.requests) == 2
    reminder = recorder.json_bodies()[1]
    assert reminder["items"][0]["kind"] == "reminder" and "(reminder)" in reminder["text"]


def test_resolved_message_when_the_incident_ends(run_check, gateway, recorder, alerting):
    gateway.add_channel("imobsites", "disconnected", "qr")
    run_check(env=alerting)
    gateway.channels["imobsites"]["status"] = "connected"
    run = run_check(env=alerting)
    assert run.code == 0
    resolved = recorder.json_bodies()[-1]
    assert resolved["state"] == "RESOLVED"
    assert resolved["items"][0]["kind"] == "resolved"
    assert "imobsites: recovered" in resolved["text"]


def test_gateway_down_for_n_runs_alerts_and_then_resolves(run_check, gateway, recorder,
                                                          alerting):
    gateway.set_fault("list", json_fault(401, {"success": False, "error": "Unauthorized"},
                                         times=2))
    run_check(env=alerting)
    assert recorder.requests == []
    run_check(env=alerting)
    [alert] = recorder.json_bodies()
    assert "the gateway is failing" in alert["text"] and "refused the secret" in alert["text"]
    run = run_check(env=alerting)
    assert run.code == 0
    assert "the gateway answers again" in recorder.json_bodies()[-1]["text"]
    assert "the gateway answers again after" in run.log


def test_no_destination_means_the_log_alone_says_so(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "qr")
    run = run_check()
    assert "alert to nowhere: no alert destination is configured" in run.log


def test_alert_never_carries_the_secret(run_check, gateway, recorder, alerting):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(200, {"success": False,
                                             "error": f"bad token {SECRET}"}))
    run_check(env=alerting)
    run_check(env=alerting)
    assert recorder.requests
    assert SECRET not in recorder.requests[0]["body"]
    assert SECRET[:8] not in recorder.requests[0]["body"]


# -- delivery --------------------------------------------------------------------------------

def test_failed_webhook_is_kept_and_delivered_on_the_next_run(run_check, gateway, recorder,
                                                              alerting, home):
    gateway.add_channel("imobsites", "disconnected", "qr")
    recorder.status = 500
    run = run_check(env=alerting)
    assert run.code == 2  # the delivery failure does not change the check's status
    assert "alert delivery to webhook failed: HTTP 500; kept" in run.log
    assert len(state_of(home)["pending_alerts"]) == 1
    recorder.status = 200
    gateway.channels["imobsites"]["status"] = "connected"
    run = run_check(env=alerting)
    assert run.code == 0
    texts = [b["text"] for b in recorder.json_bodies()]
    assert "a person must scan" in texts[-2] and texts[-1].startswith("WhatsApp sessions RESOLVED")
    assert state_of(home)["pending_alerts"] == []
    assert "alert sent to webhook" in run.log


def test_unreachable_webhook_is_logged_and_kept(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected", "qr")
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    assert run.code == 2
    assert "alert delivery to webhook failed" in run.log
    assert state_of(home)["pending_alerts"][0]["destinations"] == ["webhook"]


def test_webhook_token_is_not_written_anywhere(run_check, gateway, recorder, alerting):
    gateway.add_channel("imobsites", "disconnected", "qr")
    recorder.status = 500
    run = run_check(env=alerting)
    assert "tok3nXYZ" not in run.stdout + run.stderr + run.log


def test_alert_by_email_through_a_real_smtp_server(run_check, gateway):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        gateway.add_channel("imobsites", "disconnected", "qr")
        run = run_check(env={"HEALTHCHECK_SMTP_HOST": "127.0.0.1",
                             "HEALTHCHECK_SMTP_PORT": str(port),
                             "HEALTHCHECK_SMTP_STARTTLS": "false",
                             "HEALTHCHECK_SMTP_FROM": "watchdog@example.com",
                             "HEALTHCHECK_SMTP_TO": "ops@example.com, boss@example.com"})
    finally:
        controller.stop()
    assert run.code == 2
    [mail] = received
    assert mail["To"] == "ops@example.com, boss@example.com"
    assert mail["Subject"].startswith("WhatsApp sessions CRITICAL on ")
    assert "imobsites: a person must scan" in mail.get_payload()
    assert "alert sent to email" in run.log


def test_alert_command_gets_the_alert_as_json_on_stdin(run_check, gateway, tmp_path):
    out = tmp_path / "alert.json"
    script = tmp_path / "notify.py"
    script.write_text(f"import sys\nopen({str(out)!r}, 'w').write(sys.stdin.read())\n")
    gateway.add_channel("imobsites", "disconnected", "qr")
    run_check(env={"HEALTHCHECK_ALERT_COMMAND": f"{sys.executable} {script}"})
    alert = json.loads(out.read_text())
    assert alert["items"][0]["id"] == "imobsites" and alert["items"][0]["reason"] == "qr"


def test_failing_alert_command_is_logged_with_its_error(run_check, gateway, tmp_path):
    script = tmp_path / "notify.py"
    script.write_text("import sys\nsys.stderr.write('sms gateway said no\\n')\nsys.exit(4)\n")
    gateway.add_channel("imobsites", "disconnected", "qr")
    run = run_check(env={"HEALTHCHECK_ALERT_COMMAND": f"{sys.executable} {script}"})
    assert run.code == 2
    assert "alert delivery to command failed: exit status 4: sms gateway said no" in run.log


def test_hanging_alert_command_is_stopped_by_its_timeout(run_check, gateway, tmp_path):
    script = tmp_path / "notify.py"
    script.write_text("import time\ntime.sleep(60)\n")
    gateway.add_channel("imobsites", "disconnected", "qr")
    run = run_check(env={"HEALTHCHECK_ALERT_COMMAND": f"{sys.executable} {script}",
                         "HEALTHCHECK_ALERT_TIMEOUT": "1"}, timeout=30)
    assert run.code == 2
    assert "alert delivery to command failed: still running after 1s" in run.log


# -- dead man's switch -----------------------------------------------------------------------

def test_ping_start_then_success(run_check, recorder):
    run = run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/ping/abc-uuid"})
    assert run.code == 0
    assert recorder.paths() == ["/ping/abc-uuid/start", "/ping/abc-uuid"]


def test_ping_success_on_warning(run_check, gateway, recorder):
    gateway.add_channel("imobsites", "disconnected")
    run = run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/ping/abc-uuid/"})
    assert run.code == 1
    assert recorder.paths() == ["/ping/abc-uuid/start", "/ping/abc-uuid"]
    assert "WHATSAPP SESSIONS WARNING" in recorder.requests[1]["body"]


def test_ping_fail_on_critical(run_check, gateway, recorder):
    gateway.set_fault("list", html_fault(502))
    run = run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/p"})
    assert run.code == 2
    assert recorder.paths() == ["/p/start", "/p/fail"]


def test_failing_ping_is_retried_logged_and_keeps_the_exit_status(run_check, recorder):
    recorder.status = 503
    run = run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/p"})
    assert run.code == 0
    assert recorder.paths() == ["/p/start"] * 3 + ["/p"] * 3
    assert "ping http://127.0.0.1" in run.log and "failed: HTTP 503" in run.log


def test_run_that_finds_the_lock_held_sends_no_ping(run_check, recorder, home):
    import fcntl
    (home / "logs").mkdir()
    with open(home / "logs" / "healthcheck-sessions.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run = run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/p"})
    assert run.code == 3
    assert recorder.requests == []


# -- dry run --------------------------------------------------------------------------------

def test_dry_run_sends_no_alert_and_no_ping_but_shows_them(run_check, gateway, recorder, home,
                                                           alerting):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check(env=alerting)
    state_before = state_of(home)
    env = dict(alerting, HEALTHCHECK_PING_URL=recorder.url + "/p")
    run = run_check("--dry-run", "--json", env=env)
    report = json.loads(run.stdout)
    assert recorder.requests == []
    assert state_of(home) == state_before
    channel = next(c for c in report["channels"] if c["id"] == "imobsites")
    assert channel["incident"]["runs_down"] == 2
    [alert] = report["alerts"]
    assert alert["would_send_to"] == ["webhook"] and "imobsites" in alert["text"]


def test_deadline_covers_a_hanging_webhook(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "qr")
    gateway.set_fault("other", Fault("hang"))  # the webhook below is served by the gateway
    # Without the deadline the delivery would wait 60 s and the subprocess time out at 30.
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": gateway.url + "/hook",
                         "HEALTHCHECK_DEADLINE": "6", "HEALTHCHECK_ALERT_TIMEOUT": "60"},
                    timeout=30)
    assert run.code == 2
    assert "alert delivery to webhook failed" in run.log
