"""Round three, items 16 and 18: a monitoring check that reads what cron learned (`--status`),
and a deadline and a metrics file that hold whatever the listing's size.

Each test runs the real script as a subprocess against the gateway simulator on loopback.
"""

import fcntl
import json
import os
import re
from datetime import datetime, timedelta

from gateway_simulator import Fault

STATE = ("logs", "healthcheck-state.json")


def _state_file(home):
    return home.joinpath(*STATE)


def _without_time(status_line: str) -> str:
    """The status line without its `time=` figure (the printed one is taken a moment later)."""
    return re.sub(r" time=[0-9.]+s", " time=", status_line)


def _age_last_run(home, minutes: float) -> None:
    """Make the recorded last run `minutes` old, as if cron had stopped since."""
    path = _state_file(home)
    state = json.loads(path.read_text(encoding="utf-8"))
    ended = datetime.now().astimezone() - timedelta(minutes=minutes)
    state["last_run"]["ended_at"] = ended.isoformat(timespec="seconds")
    path.write_text(json.dumps(state), encoding="utf-8")


# Item 16: --status ------------------------------------------------------------------------------

def test_status_repeats_the_cron_runs_result_without_gateway_or_database(
        run_check, gateway, home, sqlite_db):
    # Tests if --status prints the last cron run's status line and perfdata with its exit
    # status, calling no gateway endpoint and never opening the activity database.
    gateway.add_channel("orsegups", "disconnected")
    settings = sqlite_db.settings()
    cron = run_check(env=settings)
    assert cron.code == 1, cron.stdout + cron.stderr
    assert gateway.count("qr") == 1
    state_before = _state_file(home).read_bytes()
    log_before = cron.log
    database = sqlite_db.url.split(":///", 1)[1]
    os.remove(database)  # SQLite creates the file again the moment anything connects to it
    gateway.requests.clear()

    check = run_check("--status", env=settings)

    assert check.code == 1, check.stdout + check.stderr
    assert _without_time(check.status_line) == _without_time(cron.status_line)
    assert "this check made no gateway call" in check.stdout.splitlines()[1]
    assert "channel orsegups: status disconnected, reconnect_requested" in check.stdout
    assert check.stderr == ""
    assert gateway.requests == []
    assert not os.path.exists(database)
    assert _state_file(home).read_bytes() == state_before
    assert check.log == log_before
    # The control: a real check does open the database (and so would recreate the file).
    run_check("--dry-run", env=settings)
    assert os.path.exists(database)


def test_status_sends_no_ping_and_no_alert(run_check, gateway, recorder):
    # Tests if --status, unlike a run, pings nothing and delivers nothing: only cron's run does.
    gateway.add_channel("orsegups", "qr_required", "qr")
    urls = {"HEALTHCHECK_PING_URL": recorder.url + "/ping/abcdef012345",
            "HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook/abcdef012345"}
    assert run_check(env=urls).code == 2
    seen = len(recorder.paths())
    assert seen >= 3  # /start, the alert, /fail
    check = run_check("--status", env=urls)
    assert check.code == 2
    assert len(recorder.paths()) == seen


def test_status_after_an_ok_run_is_ok_with_its_status_line(run_check, gateway):
    # Tests if an all-connected cron run (silent on stdout) still leaves an OK for --status.
    cron = run_check()
    assert (cron.code, cron.stdout) == (0, "")
    check = run_check("--status")
    assert check.code == 0
    assert check.first_line == "WHATSAPP SESSIONS OK - 2 channels connected"
    assert check.perfdata.startswith("channels=2;;;0 connected=2;;;0 not_connected=0;;;0")


def test_status_answers_at_once_while_the_cron_run_holds_the_lock(run_check, gateway, home):
    # Tests if --status never waits for the run lock: a cron run in progress does not block it.
    assert run_check().code == 0
    lock = home / "logs" / "healthcheck-sessions.lock"
    with open(lock, "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        check = run_check("--status", timeout=15)
        busy = run_check(timeout=15)
    assert check.code == 0, check.stdout
    assert busy.code == 3 and "another run is in progress" in busy.stdout  # the lock was held


def test_status_is_critical_when_the_last_run_is_too_old(run_check, gateway, home):
    # Tests if a state older than HEALTHCHECK_STATUS_MAX_AGE_MINUTES (default 35) is CRITICAL,
    # naming the setting, with the last result on the next line.
    gateway.add_channel("orsegups", "disconnected")
    assert run_check().code == 1
    _age_last_run(home, 50)
    gateway.requests.clear()

    check = run_check("--status")

    assert check.code == 2, check.stdout
    assert check.first_line == (
        "WHATSAPP SESSIONS CRITICAL - no cron run has finished for 50 min "
        "(HEALTHCHECK_STATUS_MAX_AGE_MINUTES is 35): cron no longer runs the script, or its "
        "runs are killed before they end; check the crontab and the log")
    assert check.perfdata.startswith("age=30") and check.perfdata.endswith("s;;2100;0")
    assert check.stdout.splitlines()[1].startswith("last result, at ")
    assert "WHATSAPP SESSIONS WARNING - 1 of 3 channels not connected" in check.stdout
    assert gateway.requests == []


def test_status_max_age_is_a_setting(run_check, gateway, home):
    # Tests if HEALTHCHECK_STATUS_MAX_AGE_MINUTES moves the limit: 50 min is fresh under 60.
    assert run_check().code == 0
    _age_last_run(home, 50)
    check = run_check("--status", env={"HEALTHCHECK_STATUS_MAX_AGE_MINUTES": "60"})
    assert check.code == 0, check.stdout
    assert check.first_line == "WHATSAPP SESSIONS OK - 2 channels connected"


def test_status_without_state_is_unknown_in_one_line(run_check, gateway, home):
    # Tests if --status before any cron run says so in one line, exit 3, and creates nothing.
    check = run_check("--status")
    assert check.code == 3
    lines = check.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("WHATSAPP SESSIONS UNKNOWN - the cron run has not run yet: "
                               "there is no state file ")
    assert gateway.requests == []
    assert not (home / "logs").exists()


def test_status_with_a_state_of_an_earlier_version_is_unknown(run_check, gateway, home):
    # Tests if a state file without a recorded run (1.1.0 wrote none) is UNKNOWN, not OK.
    path = _state_file(home)
    path.parent.mkdir()
    path.write_text(json.dumps({"version": 1, "incidents": {}, "pending_alerts": []}))
    check = run_check("--status")
    assert check.code == 3
    assert "holds no finished run yet" in check.first_line


def test_status_json_carries_the_last_run(run_check, gateway):
    # Tests if --status --json gives the state, the exit code and the record it repeats.
    cron = run_check("--verbose")
    check = run_check("--status", "--json")
    data = json.loads(check.stdout)
    assert (check.code, data["state"], data["exit_code"]) == (0, "OK", 0)
    assert _without_time(data["last_run"]["status_line"]) == _without_time(cron.status_line)
    assert data["lines"][0] == data["last_run"]["status_line"]


def test_status_cannot_be_combined_with_dry_run_or_force(run_check, gateway):
    # Tests if --status with --dry-run is refused as a bad command line (and `--stat` is no
    # abbreviation of it).
    for args in (("--status", "--dry-run"), ("--status", "--force"), ("--stat",)):
        check = run_check(*args)
        assert check.code == 3, args
        assert "bad command line" in check.stdout
    assert gateway.requests == []


# Item 18: a listing of any size ----------------------------------------------------------------

def _big_listing(count: int, down_every: int = 0) -> bytes:
    """A pre-encoded wrapper listing: the simulator serves it without building it per request."""
    entries = [{"id": f"channel-{n:06d}",
                "status": "disconnected" if down_every and n % down_every == 0 else "connected"}
               for n in range(count)]
    return json.dumps({"success": True, "channels": entries}).encode()


def test_a_huge_listing_ends_with_the_deadline_line_not_running_on(run_check, gateway, home):
    # Tests if a listing of 200,000 channels (about 10 MB, within the cap) under a 2-second
    # deadline ends CRITICAL with the deadline's one line, kicking nothing, instead of checking
    # every entry past the deadline and reporting OK.
    gateway.set_fault("list", Fault("response", 200, _big_listing(200_000)))
    run = run_check("-t", "2")
    assert run.code == 2, run.stdout[:300]
    assert run.stdout.startswith("WHATSAPP SESSIONS CRITICAL - deadline: no time left in "
                                 "HEALTHCHECK_DEADLINE")
    assert run.first_line.endswith("none kicked): raise -t for a listing this size")
    assert len(run.stdout.splitlines()) == 1
    assert gateway.count("qr") == 0
    assert "Traceback" not in run.stderr


def test_metrics_file_keeps_the_channels_not_connected_within_its_limit(run_check, gateway,
                                                                          tmp_path):
    # Tests if HEALTHCHECK_METRICS_MAX_CHANNELS bounds the per-channel series, keeping the
    # channels not connected first, with totals for all and a gauge of how many were left out.
    gateway.channels.clear()
    for number in range(6):
        gateway.add_channel(f"c{number}", "connected" if number % 2 else "disconnected", "qr")
    metrics = tmp_path / "whatsapp.prom"
    run = run_check(env={"HEALTHCHECK_METRICS_FILE": str(metrics),
                         "HEALTHCHECK_METRICS_MAX_CHANNELS": "2"})
    assert run.code == 2
    samples = read_metrics(metrics)
    up = {labels[0][1]: value for (name, labels), value in samples.items()
          if name == "whatsapp_session_up"}
    assert up == {"c0": 0, "c2": 0}
    assert samples[("whatsapp_healthcheck_channels_omitted", ())] == 4
    assert samples[("whatsapp_healthcheck_channels", (("state", "listed"),))] == 6
    assert samples[("whatsapp_healthcheck_channels", (("state", "not_connected"),))] == 3
    assert samples[("whatsapp_healthcheck_channels", (("state", "connected"),))] == 3
    text = metrics.read_text(encoding="utf-8")
    assert "# 4 of 6 channels have no series of their own (HEALTHCHECK_METRICS_MAX_CHANNELS=2)" \
        in text


def test_metrics_file_of_a_200000_channel_listing_stays_small(run_check, gateway, tmp_path):
    # Tests if the default limit (5,000 channels) bounds the metrics file of a huge listing:
    # 200,000 channels wrote 30 MB before.
    gateway.set_fault("list", Fault("response", 200, _big_listing(200_000)))
    metrics = tmp_path / "whatsapp.prom"
    run = run_check("-t", "120", env={"HEALTHCHECK_METRICS_FILE": str(metrics)}, timeout=180)
    assert run.code == 0, run.stdout[:300]
    assert metrics.stat().st_size < 2 * 1024 * 1024
    samples = read_metrics(metrics)
    assert samples[("whatsapp_healthcheck_channels_omitted", ())] == 195_000
    assert samples[("whatsapp_healthcheck_channels", (("state", "listed"),))] == 200_000


def read_metrics(path) -> dict:
    """Every sample of a metrics file, read with the Prometheus client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


# The pure parts, fed plain data -----------------------------------------------------------------

def _hs():
    import sys
    from types import SimpleNamespace

    from conftest import ROOT
    sys.path.insert(0, str(ROOT))
    from healthcheck import model, report
    return SimpleNamespace(judge_last_run=report.judge_last_run, Report=report.Report,
                           ChannelReport=model.ChannelReport)


def test_judge_last_run_takes_a_run_from_the_future_as_fresh():
    # Tests if a clock set back after the run (ended_at ahead of now) is not called stale.
    hs = _hs()
    now = datetime(2026, 2, 9, 14, 30).astimezone()
    last = {"ended_at": (now + timedelta(minutes=5)).isoformat(), "run_id": "abcd1234",
            "exit_status": 1, "status_line": "WHATSAPP SESSIONS WARNING - x | channels=1;;;0",
            "details": ["channel x: status disconnected, reconnect_requested: ok"]}
    state, lines = hs.judge_last_run(last, now, 35)
    assert state == 1
    assert lines[0] == last["status_line"]
    assert lines[2] == last["details"][0]
    assert hs.judge_last_run(last, now + timedelta(minutes=41), 35)[0] == 2


def test_summary_of_200000_channels_down_names_a_few_and_counts_the_rest():
    # Tests if the summary, built from only the channels it can show, still counts them all.
    hs = _hs()
    report = hs.Report(channels=[hs.ChannelReport(f"c{n}", "disconnected", False, "failed")
                                 for n in range(200_000)])
    assert report.summary().endswith(" and 199990 more")
    line = report.status_line().split(" | ", 1)[0]
    assert len(line) <= 200
    assert line.startswith("WHATSAPP SESSIONS CRITICAL - 200000 of 200000 channels not "
                           "connected: c0 (failed), c1 (failed)")
    assert line.endswith(" more")
