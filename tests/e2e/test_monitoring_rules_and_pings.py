"""Round three, the monitoring stack: Prometheus rules under promtool, pings that never answer,
the combined state, and the small lies of the Nagios output (issue 14, items 11, 12, 14, 17)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from conftest import ROOT, free_port
from gateway_simulator import Fault

sys.path.insert(0, str(ROOT))
from healthcheck.constants import CRITICAL, OK, UNKNOWN, WARNING
from healthcheck.model import ChannelReport
from healthcheck.report import Report, metrics_text, remembered_channels, worst_state

NOW = datetime.now(timezone.utc)


def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


def perfdata_items(run) -> dict:
    return dict(item.split(";", 1)[0].split("=", 1) for item in run.perfdata.split())


# -- 14. CRITICAL > WARNING > UNKNOWN > OK --------------------------------------------------------

def test_combined_state_follows_the_monitoring_plugins_order():
    C, W, U, O = CRITICAL, WARNING, UNKNOWN, OK
    assert worst_state([U, C]) == C
    assert worst_state([U, W]) == W
    assert worst_state([O, U]) == U
    assert worst_state([O]) == O and worst_state([]) == O
    report = Report(channels=[ChannelReport("lost", "qr", False, "qr_issued")],
                       problems=[(U, "the activity source cannot be read")])
    assert report.state == C


def test_a_qr_is_critical_even_when_the_activity_source_also_fails(run_check, gateway,
                                                                   sqlite_db):
    gateway.add_channel("lost", "qr_required", "qr")
    run = run_check(env=sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELEC 1"))
    assert run.code == 2, run.stdout
    assert run.first_line.startswith("WHATSAPP SESSIONS CRITICAL - 1 of 3 channels not connected")
    assert "qr_issued" in run.first_line
    assert "the activity source" in run.stdout  # still named, in the output and the log
    assert "the activity source" in run.log


# -- 17. the small lies of the Nagios output ------------------------------------------------------

def test_unreachable_gateway_gives_undetermined_counts_not_zero(run_check):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert run.code == 2, run.stdout
    items = perfdata_items(run)
    assert {k: items[k] for k in ("channels", "connected", "not_connected", "missing",
                                  "silent")} == dict.fromkeys(
        ("channels", "connected", "not_connected", "missing", "silent"), "U")
    # No call was made: those are counted, and the count is 0.
    assert {items[k] for k in ("kicked", "reconnected", "qr_issued", "failed")} == {"0"}
    # Still the guidelines' format: 'label'=value[UOM];[warn];[crit];[min];[max], U for a value.
    for item in run.perfdata.split():
        assert re.fullmatch(r"[a-z_]+=(U|[0-9]+(\.[0-9]+)?s?);;;0", item), item


def test_silence_count_is_undetermined_when_the_activity_source_fails(run_check, sqlite_db):
    run = run_check("--verbose", env=sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELEC 1"))
    items = perfdata_items(run)
    assert items["silent"] == "U" and items["channels"] == "2"


def test_killed_run_notice_appears_once_in_the_long_output(run_check, gateway, home, tmp_path):
    from test_monitoring import _start_hanging_run
    process = _start_hanging_run(home, gateway, tmp_path)
    process.kill()
    process.communicate()
    gateway.faults.clear()
    run = run_check()
    assert run.code == 1, run.stdout
    long_output = run.stdout.split("\n", 1)[1]
    assert long_output.count("did not finish") == 1, run.stdout
    assert "-t SECONDS below their timeout" in long_output  # said whole, once


def test_a_two_hour_silence_closes_with_its_real_length(run_check, sqlite_db, recorder):
    from test_silent_channels import busy
    busy(sqlite_db)  # a message every 10 minutes, none for the last 2 h
    settings = sqlite_db.settings(HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook")
    assert run_check(env=settings).code == 1
    sqlite_db.add("pixel12digital", [NOW - timedelta(minutes=1)])
    run = run_check(env=settings)
    assert run.code == 0, run.stdout
    assert "channel pixel12digital receives messages again after 2 h" in run.log, run.log
    resolved = recorder.json_bodies()[-1]
    assert resolved["state"] == "RESOLVED" and "(was down 2 h" in resolved["text"]


# -- 12. a ping server that accepts and never answers ---------------------------------------------

@pytest.fixture
def silent_ping_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/ping/abc"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.mark.parametrize("deadline", ["20", "25"])
def test_a_ping_that_never_answers_leaves_the_gateway_its_time(run_check, gateway, home,
                                                               silent_ping_server, deadline):
    gateway.add_channel("imobsites", "disconnected")
    # The default alert timeout (10 s a try, 3 tries): the /start ping alone would outlast -t.
    env = {"HEALTHCHECK_PING_URL": silent_ping_server, "HEALTHCHECK_ALERT_TIMEOUT": "10"}
    run = run_check("-t", deadline, env=env)
    assert run.code == 1, run.stdout  # the kick's WARNING; the ping changes nothing
    assert "no time left in HEALTHCHECK_DEADLINE" not in run.stdout
    assert gateway.channels["imobsites"]["status"] == "connected"  # listed and kicked
    assert "ping http://127.0.0.1" in run.log and "/start failed" in run.log
    assert "*gateway*" not in state_of(home)["incidents"]


# -- 11. Prometheus: the shipped rules, under promtool --------------------------------------------

RULES = ROOT / "deploy" / "prometheus-rules.yml"
#: Minutes between two cron runs: node_exporter shows each run's file until the next one.
WINDOW = 15
LABELS = {"instance": "panel", "job": "node"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: test.sh must install Debian's prometheus package")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def read_samples(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metrics_of_runs(run_check, gateway, tmp_path, phases) -> list[dict]:
    """Run the script once per phase (a function setting up the gateway); return each run's
    metrics file, parsed by prometheus_client."""
    path = tmp_path / "textfile" / "whatsapp.prom"
    runs = []
    for phase in phases:
        gateway.faults.clear()
        phase(gateway)
        run_check(env={"HEALTHCHECK_METRICS_FILE": str(path)})
        runs.append(read_samples(path.read_text(encoding="utf-8")))
    return runs


def input_series(runs: list[dict], last_for: int = WINDOW) -> list[dict]:
    """promtool input series: run i's file as scraped from minute WINDOW * i until the next run
    (the last one for `last_for` minutes); a series the file lacks has no sample then (`_`).

    Times move to promtool's clock, where run i ended at WINDOW * i minutes.
    """
    ends = [run[("whatsapp_healthcheck_last_run_timestamp_seconds", ())] for run in runs]

    def moved(value: float, index: int) -> float:
        """A real time written by run `index` -> the promtool time of the run it names."""
        nearest = min(range(index + 1), key=lambda i: (abs(ends[i] - value), -i))
        return WINDOW * 60 * nearest

    series = []
    for name, labels in sorted({key for run in runs for key in run}):
        values = []
        for index, run in enumerate(runs):
            value = run.get((name, labels))
            if value is not None and name.endswith("_timestamp_seconds"):
                value = moved(value, index)
            minutes = last_for if index == len(runs) - 1 else WINDOW
            values += ["_" if value is None else f"{value:g}"] * minutes
        label_text = ",".join(f'{k}="{v}"' for k, v in [*labels, *LABELS.items()])
        series.append({"series": f"{name}{{{label_text}}}", "values": " ".join(values)})
    return series


def alert(name: str, at: str, *expected: dict) -> dict:
    summaries = {
        "WhatsAppSessionDown": "WhatsApp channel {channel} is down or silent",
        "WhatsAppGatewayDown": "The WhatsApp gateway has not answered the channel list for 30 "
                               "minutes on {instance}",
        "WhatsAppWatchdogNotRunning": "healthcheck_sessions has not run for 30 minutes on "
                                      "{instance}"}
    return {"eval_time": at, "alertname": name, "exp_alerts": [
        {"exp_labels": {**LABELS, **labels},
         "exp_annotations": {"summary": summaries[name].format(**LABELS, **labels)}}
        for labels in expected]}


def promtool_test(tmp_path, series: list[dict], alerts: list[dict]) -> None:
    """Run `promtool test rules` on the shipped rules file; fail with its output."""
    # JSON is YAML: no YAML library needed.
    unit = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}]}
    path = tmp_path / "rules-test.yml"
    path.write_text(json.dumps(unit, indent=1), encoding="utf-8")
    done = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def connected(gateway):
    pass


def qr_to_scan(gateway):
    gateway.add_channel("lost", "qr_required", "qr")


def gateway_fails(gateway):
    gateway.set_fault("list", Fault("response", status=502, body="<html>bad</html>",
                                    content_type="text/html"))


def test_shipped_rules_pass_promtool_check():
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0 and "SUCCESS: 3 rules found" in done.stdout, \
        done.stdout + done.stderr


def test_readme_shows_the_shipped_rules_file_as_it_is():
    readme = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    assert "deploy/prometheus-rules.yml" in readme
    assert f"```yaml\n{RULES.read_text(encoding='utf-8')}```" in readme


def test_a_failed_listing_keeps_each_channel_series_with_when_it_was_last_seen(
        run_check, gateway, tmp_path):
    up, failed = metrics_of_runs(run_check, gateway, tmp_path, [qr_to_scan, gateway_fails])
    assert failed[("whatsapp_gateway_up", ())] == 0
    for channel, value in (("lost", 0), ("pixel12digital", 1), ("imobsites", 1)):
        key = (("channel", channel),)
        assert failed[("whatsapp_session_up", key)] == value == up[("whatsapp_session_up", key)]
        assert failed[("whatsapp_session_silent", key)] == 0
        # Last seen by the first run, which the second run's own time follows.
        seen = failed[("whatsapp_session_last_seen_timestamp_seconds", key)]
        assert seen == up[("whatsapp_session_last_seen_timestamp_seconds", key)]
        assert seen <= failed[("whatsapp_healthcheck_last_run_timestamp_seconds", ())]
    assert failed[("whatsapp_session_status", (("channel", "lost"), ("status", "qr_required")))]
    assert ("whatsapp_session_down_since_timestamp_seconds", (("channel", "lost"),)) in failed


def test_rule_channel_down_fires_after_30_minutes_through_a_failed_run(run_check, gateway,
                                                                       tmp_path):
    promtool()
    runs = metrics_of_runs(run_check, gateway, tmp_path,
                           [qr_to_scan, gateway_fails, qr_to_scan, qr_to_scan])
    promtool_test(tmp_path, input_series(runs), [
        alert("WhatsAppSessionDown", "29m"),
        alert("WhatsAppSessionDown", "31m", {"channel": "lost"}),
        alert("WhatsAppGatewayDown", "31m"),  # down for one run only
        alert("WhatsAppWatchdogNotRunning", "59m")])


def test_rule_gateway_down_fires_and_channels_stay_as_last_seen(run_check, gateway, tmp_path):
    promtool()
    runs = metrics_of_runs(run_check, gateway, tmp_path,
                           [connected, gateway_fails, gateway_fails, gateway_fails])
    promtool_test(tmp_path, input_series(runs), [
        alert("WhatsAppGatewayDown", "44m"),
        alert("WhatsAppGatewayDown", "46m", {}),
        alert("WhatsAppSessionDown", "46m"),
        alert("WhatsAppWatchdogNotRunning", "59m")])


def test_rule_watchdog_not_running_fires_after_30_minutes_without_a_run(run_check, gateway,
                                                                        tmp_path):
    promtool()
    runs = metrics_of_runs(run_check, gateway, tmp_path, [connected])
    promtool_test(tmp_path, input_series(runs, last_for=45), [
        alert("WhatsAppWatchdogNotRunning", "29m"),
        alert("WhatsAppWatchdogNotRunning", "31m", {}),
        alert("WhatsAppSessionDown", "31m")])


def test_remembered_series_survive_a_failed_listing_and_a_hand_edited_state_is_filtered():
    now = datetime(2026, 2, 9, 14, 30, tzinfo=timezone.utc)
    listed = Report(channels=[ChannelReport("a", "connected", True),
                                 ChannelReport("b", "qr", False, "qr_issued")])
    kept = remembered_channels({}, listed, now)
    assert list(kept) == ["b", "a"]  # the down ones first, should the cap bite
    assert kept["b"] == {"up": 0, "silent": 0, "status": "qr", "seen_at": round(now.timestamp())}
    failed = Report(error="gateway unreachable", error_state=CRITICAL, gateway_failed=True)
    edited = {**kept, "c": {"up": True, "silent": 0, "status": "x", "seen_at": 1},
              "d": {"up": 1, "silent": 0, "status": "x", "seen_at": float("inf")}, "e": "x"}
    assert remembered_channels(edited, failed, now) == kept
    text = metrics_text(failed, {}, now, kept)
    samples = read_samples(text)
    assert samples[("whatsapp_session_up", (("channel", "b"),))] == 0
    assert samples[("whatsapp_session_last_seen_timestamp_seconds", (("channel", "a"),))] == \
        now.timestamp()
