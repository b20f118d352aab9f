"""The log, the report and the exit status (healthcheck issue, 5-6)."""

import json
import re
import subprocess

from gateway_simulator import html_fault

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d (OK|WARNING|CRITICAL|UNKNOWN) +"
                      r"\[healthcheck_sessions run=([0-9a-f]{8})\] \S")


def test_all_connected_is_silent_exit_0_and_writes_no_log(run_check, home):
    run = run_check()
    assert (run.code, run.stdout, run.stderr) == (0, "", "")
    assert not (home / "logs" / "healthcheck-sessions.log").exists()


def test_all_connected_leaves_an_existing_log_byte_identical(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    gateway.channels["imobsites"]["status"] = "connected"
    recovery = run_check()  # closes the incident: one line saying so
    assert recovery.code == 0 and "channel imobsites recovered" in recovery.log
    before = recovery.log_file.read_bytes()
    run = run_check()
    assert run.code == 0
    assert run.log_file.read_bytes() == before


def test_log_lines_carry_offset_timestamp_level_and_one_run_id(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.add_channel("other", "qr_required", "qr")
    run = run_check(environ={"TZ": "America/Sao_Paulo"})
    lines = run.log.splitlines()
    assert len(lines) == 4  # the summary, one per channel, and the alert for the QR
    matches = [LOG_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert len({m.group(2) for m in matches}) == 1
    assert "-03:00 " in lines[0]
    assert [m.group(1) for m in matches] == ["CRITICAL", "WARNING", "CRITICAL", "CRITICAL"]
    assert "alert to nowhere: no alert destination is configured" in lines[3]


def test_each_run_gets_its_own_run_id(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    run = run_check()
    ids = {LOG_LINE.match(line).group(2) for line in run.log.splitlines()}
    assert len(ids) == 2


def test_log_file_setting_moves_the_log_and_creates_its_folder(run_check, gateway, tmp_path):
    gateway.add_channel("imobsites", "disconnected")
    target = tmp_path / "var" / "deep" / "hc.log"
    run = run_check(env={"HEALTHCHECK_LOG_FILE": str(target)})
    assert run.code == 1
    assert "imobsites" in target.read_text()
    assert not run.log_file.exists()


def test_output_lists_each_channel_that_was_not_connected(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.add_channel("third", "qr_required", "qr")
    run = run_check()
    lines = run.stdout.splitlines()
    assert lines[0].startswith("WHATSAPP SESSIONS CRITICAL - 2 of 3 channels not connected")
    assert lines[1].startswith("channel imobsites: status disconnected, reconnect_requested")
    assert lines[2].startswith("channel third: status qr_required, qr_issued")
    assert lines[3].startswith("alert to nowhere")
    assert len(lines) == 4


def test_verbose_reports_an_all_connected_run(run_check):
    run = run_check("--verbose")
    assert run.code == 0
    assert run.first_line == "WHATSAPP SESSIONS OK - 2 channels connected"
    assert "channel pixel12digital: connected" in run.stdout


def test_json_prints_exactly_one_object_with_the_contract_fields(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    run = run_check("--json")
    report = json.loads(run.stdout)
    assert run.code == 1 and report["exit_code"] == 1
    assert report["state"] == "WARNING" and report["dry_run"] is False
    assert report["error"] is None
    fields = ("id", "status", "connected", "outcome", "detail")
    assert [{k: c[k] for k in fields} for c in report["channels"]] == [
        {"id": "pixel12digital", "status": "connected", "connected": True, "outcome": None,
         "detail": None},
        {"id": "imobsites", "status": "disconnected", "connected": False,
         "outcome": "reconnect_requested", "detail": "reconnect requested from the stored login"}]


def test_json_reports_a_gateway_failure_in_error(run_check, gateway):
    gateway.set_fault("list", html_fault(502))
    run = run_check("--json")
    report = json.loads(run.stdout)
    assert run.code == 2 and report["state"] == "CRITICAL"
    assert "HTTP 502" in report["error"]


def test_worst_state_wins(run_check, gateway):
    gateway.add_channel("warn", "disconnected")
    gateway.add_channel("crit", "disconnected", "qr")
    gateway.raw_list = {"channels": [{"id": "warn", "status": "disconnected"},
                                     {"id": "crit", "status": "disconnected"}, {"bad": 1}]}
    run = run_check()
    assert run.code == 2  # CRITICAL (a QR) beats UNKNOWN (an entry outside the contract)


def test_cron_redirect_into_the_log_does_not_duplicate_events(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected")
    log = home / "logs" / "healthcheck-sessions.log"
    log.parent.mkdir()
    with open(log, "a") as cron_redirect:
        run = run_check(stdout=cron_redirect)
    assert run.code == 1
    text = log.read_text()
    assert text.count("channel imobsites") == 1
    assert text.count("WHATSAPP SESSIONS WARNING") == 1


def test_cron_redirect_of_both_streams_does_not_duplicate_warnings(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected")
    log = home / "logs" / "healthcheck-sessions.log"
    log.parent.mkdir()
    with open(log, "a") as cron_redirect:  # >> logs/healthcheck-sessions.log 2>&1
        run = run_check(env={"HEALTHCHECK_VERIFY_TLS": "false"}, stdout=cron_redirect,
                        stderr=subprocess.STDOUT)
    assert run.code == 1
    text = log.read_text()
    assert text.count("TLS certificate checking is OFF") == 1
    assert text.count("channel imobsites") == 1
