"""A good citizen of the monitoring stack: Nagios/Icinga/Monit, healthchecks, Prometheus, systemd."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
from conftest import COMMAND_NAME, ROOT, SECRET, lay_command, write_env
from gateway_simulator import Fault

#: One performance-data item, from the Nagios plugin development guidelines:
#: 'label'=value[UOM];[warn];[crit];[min];[max] (trailing fields may be left out)
PERFDATA_ITEM = re.compile(r"^(?:'[^'=]+'|[^'= ]+)=(-?[0-9]+(?:\.[0-9]+)?)(s|ms|us|%|B|KB|MB|TB|c)?"
                           r"(?:;([0-9.:~@-]*)(?:;([0-9.:~@-]*)(?:;(-?[0-9.]*)(?:;(-?[0-9.]*))?)?)?)?$")
LABELS = ["channels", "connected", "not_connected", "kicked", "reconnected", "qr_issued",
          "failed", "missing", "time"]


def parse_perfdata(text: str) -> dict[str, str]:
    items = {}
    for item in text.split():
        match = PERFDATA_ITEM.match(item)
        assert match, f"not guideline perfdata: {item!r}"
        items[item.split("=", 1)[0]] = match.group(1)
    return items


# -- Nagios / Icinga / Monit ---------------------------------------------------------------------

def test_perfdata_follows_the_status_line_with_every_label_in_order(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.add_channel("lost", "qr_required", "qr")
    run = run_check(env={"HEALTHCHECK_VERIFY_SECONDS": "0.2",
                         "HEALTHCHECK_EXPECTED_CHANNELS": "pixel12digital,orsegups"})
    assert run.status_line.count(" | ") == 1
    items = parse_perfdata(run.perfdata)
    assert list(items)[:len(LABELS)] == LABELS
    assert {k: v for k, v in items.items() if k != "time"} == {
        "channels": "3", "connected": "1", "not_connected": "2", "kicked": "2",
        "reconnected": "1", "qr_issued": "1", "failed": "0", "missing": "1", "silent": "0",
        "ignored": "0"}
    assert float(items["time"]) > 0


def test_ok_run_with_verbose_has_perfdata_too(run_check):
    run = run_check("--verbose")
    assert run.code == 0 and run.first_line.startswith("WHATSAPP SESSIONS OK")
    assert parse_perfdata(run.perfdata)["connected"] == "2"


def test_no_pipe_in_the_text_except_the_perfdata_separator(run_check, gateway):
    gateway.add_channel("a|b", "disconnected|x", "qr")
    run = run_check()
    assert run.code == 2
    assert run.stdout.count("|") == 1, run.stdout


def test_status_line_is_at_most_200_characters(run_check, gateway):
    for number in range(30):
        gateway.add_channel(f"channel-with-a-long-name-{number:02}", "disconnected")
    run = run_check()
    assert len(run.first_line) <= 200
    assert re.search(r" and \d+ more", run.first_line)


def test_timeout_option_bounds_the_run_and_it_still_logs_and_saves(run_check, gateway, home):
    gateway.set_fault("list", Fault("hang"))
    run = run_check("-t", "3", env={"HEALTHCHECK_DEADLINE": "600",
                                    "HEALTHCHECK_LIST_TIMEOUT": "90"}, timeout=60)
    assert run.code == 2
    assert "HEALTHCHECK_DEADLINE" in run.first_line or "within" in run.first_line
    assert "no complete answer" in run.log
    state = json.loads((home / "logs" / "healthcheck-state.json").read_text())
    assert state["watchdog_incidents"]["gateway"]["runs_down"] == 1


def test_version_short_option(run_check):
    run = run_check("-V")
    assert run.code == 0 and re.match(r"healthcheck_sessions\.py \d+\.\d+\.\d+", run.stdout)


def test_abbreviated_option_is_refused_not_guessed(run_check):
    run = run_check("--js")
    assert run.code == 3 and "bad command line" in run.first_line


def _start_hanging_run(home, gateway, tmp_path, extra=None):
    """Start the script against a list call that never answers; return once it holds the lock."""
    gateway.set_fault("list", Fault("hang"))
    values = {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
              "HEALTHCHECK_DEADLINE": "60", "HEALTHCHECK_LIST_TIMEOUT": "50",
              "HEALTHCHECK_VERIFY_SECONDS": "0", **(extra or {})}
    write_env(home / ".env", values)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WPP_", "HEALTHCHECK_"))}
    process = subprocess.Popen([sys.executable, str(home / COMMAND_NAME)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    calls_before = gateway.count("list")
    for _ in range(600):  # poll until the run is inside its list call: no fixed sleep
        if gateway.count("list") > calls_before:
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the run never reached its list call")


def test_a_run_killed_from_outside_is_noticed_by_the_next(run_check, gateway, home, tmp_path):
    process = _start_hanging_run(home, gateway, tmp_path)
    process.kill()  # what Nagios and Monit do at their timeout
    process.communicate()
    gateway.faults.clear()
    run = run_check()
    assert run.code == 1, run.stdout
    assert "the previous run (started at 2" in run.stdout and "did not finish" in run.stdout
    assert "-t SECONDS below their timeout" in run.stdout
    assert "did not finish" in run.log
    assert "the gateway answers again" in run.log  # the killed run counted as its failure
    assert run_check().code == 0  # noticed once


def test_killed_runs_count_towards_the_gateway_alert(run_check, gateway, home, tmp_path,
                                                    recorder):
    for _ in range(2):
        process = _start_hanging_run(home, gateway, tmp_path)
        process.kill()
        process.communicate()
    state = json.loads((home / "logs" / "healthcheck-state.json").read_text())
    assert state["watchdog_incidents"]["gateway"]["runs_down"] == 1  # counted by the second run
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook",
                         "HEALTHCHECK_ALERT_AFTER": "3", "HEALTHCHECK_DEADLINE": "12",
                         "HEALTHCHECK_LIST_TIMEOUT": "2"})
    assert run.code == 2
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["subject"] == "gateway" and alert["items"][0]["runs_down"] == 3


# -- healthchecks --------------------------------------------------------------------------------

def test_ping_suffix_goes_in_the_path_and_the_query_is_kept(run_check, gateway, recorder):
    gateway.add_channel("imobsites", "qr_required", "qr")
    run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/ping/KEY/wa-sessions?create=1"})
    assert recorder.paths() == ["/ping/KEY/wa-sessions/start", "/ping/KEY/wa-sessions/fail"]
    queries = recorder.queries()
    assert all(q["create"] == ["1"] for q in queries)
    rids = {q["rid"][0] for q in queries}
    assert len(rids) == 1 and UUID(rids.pop()).version == 4


def test_each_run_has_its_own_rid_and_the_start_body_names_host_and_run(run_check, recorder):
    for _ in range(2):
        run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/p"})
    rids = [q["rid"][0] for q in recorder.queries()]
    assert rids[0] == rids[1] != rids[2] == rids[3]
    start = recorder.requests[0]["body"]
    import socket
    assert socket.gethostname() in start and "run " in start and "started" in start


def test_open_alerted_incident_fails_the_ping_even_on_warning(run_check, gateway, recorder):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    settings = {"HEALTHCHECK_PING_URL": recorder.url + "/p", "HEALTHCHECK_ALERT_AFTER": "2"}
    assert run_check(env=settings).code == 1
    assert run_check(env=settings).code == 1
    assert recorder.paths() == ["/p/start", "/p", "/p/start", "/p/fail"]


def test_sigterm_sends_fail_and_says_what_was_kicked(run_check, gateway, home, tmp_path,
                                                    recorder):
    gateway.add_channel("a-first", "disconnected")
    gateway.add_channel("b-hangs", "disconnected")
    gateway.set_fault("qr", Fault("hang", channel="b-hangs"))
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                              "HEALTHCHECK_WORKERS": "1", "HEALTHCHECK_DEADLINE": "60",
                              "HEALTHCHECK_QR_TIMEOUT": "50",
                              "HEALTHCHECK_PING_URL": recorder.url + "/p"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WPP_", "HEALTHCHECK_"))}
    process = subprocess.Popen([sys.executable, str(home / COMMAND_NAME)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # one worker: b's call starts only after a's has ended
        if any(c["channel"] == "b-hangs" for c in gateway.calls("qr")):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stdout + stderr
    assert "run interrupted by SIGTERM" in stdout
    assert "reconnect calls already made for a-first" in stdout and "b-hangs" not in \
        stdout.splitlines()[0].split("already made for")[1]
    assert recorder.paths() == ["/p/start", "/p/fail"]


def test_bad_settings_send_fail_when_the_ping_url_is_readable(run_check, recorder):
    run = run_check(env={"WPP_GATEWAY_SECRET": None,
                         "HEALTHCHECK_PING_URL": recorder.url + "/p?create=1"})
    assert run.code == 3
    assert recorder.paths() == ["/p/fail"] and recorder.queries()[0]["create"] == ["1"]
    assert "WPP_GATEWAY_SECRET is missing" in recorder.requests[0]["body"]


def test_ping_4xx_is_not_retried(run_check, recorder):
    recorder.status = 404
    run = run_check(env={"HEALTHCHECK_PING_URL": recorder.url + "/p"})
    assert recorder.paths() == ["/p/start", "/p"]
    assert "failed: HTTP 404" in run.log


# -- Prometheus ------------------------------------------------------------------------------------

def read_metrics(path: Path) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_file_parses_with_prometheus_client(run_check, gateway, tmp_path):
    gateway.add_channel('odd "id" \\ here', "qr_required", "qr")
    metrics = tmp_path / "textfile" / "whatsapp.prom"
    run = run_check(env={"HEALTHCHECK_METRICS_FILE": str(metrics)})
    assert run.code == 2
    samples = read_metrics(metrics)
    odd = (("channel", 'odd "id" \\ here'),)
    assert samples[("whatsapp_session_up", (("channel", "pixel12digital"),))] == 1
    assert samples[("whatsapp_session_up", odd)] == 0
    assert samples[("whatsapp_session_status", odd + (("status", "qr_required"),))] == 1
    assert ("whatsapp_session_down_since_timestamp_seconds", odd) in samples
    assert ("whatsapp_session_down_since_timestamp_seconds",
            (("channel", "pixel12digital"),)) not in samples
    assert samples[("whatsapp_gateway_up", ())] == 1
    assert samples[("whatsapp_healthcheck_exit_status", ())] == 2
    assert samples[("whatsapp_healthcheck_kicks", (("outcome", "qr_issued"),))] == 1
    assert abs(samples[("whatsapp_healthcheck_last_run_timestamp_seconds", ())] - time.time()) \
        < 120
    assert samples[("whatsapp_healthcheck_duration_seconds", ())] > 0
    assert samples[("whatsapp_session_silent", (("channel", "pixel12digital"),))] == 0
    assert metrics.stat().st_mode & 0o777 == 0o644  # node_exporter reads it as its own user
    assert list(metrics.parent.iterdir()) == [metrics]  # no temporary file left behind


def test_metrics_are_written_on_ok_runs_and_when_the_gateway_fails(run_check, gateway, tmp_path):
    metrics = tmp_path / "whatsapp.prom"
    run_check(env={"HEALTHCHECK_METRICS_FILE": str(metrics)})
    assert read_metrics(metrics)[("whatsapp_healthcheck_exit_status", ())] == 0
    gateway.set_fault("list", Fault("response", status=502, body="<html>bad</html>",
                                    content_type="text/html"))
    run_check(env={"HEALTHCHECK_METRICS_FILE": str(metrics)})
    samples = read_metrics(metrics)
    assert samples[("whatsapp_gateway_up", ())] == 0
    assert samples[("whatsapp_healthcheck_exit_status", ())] == 2


def test_dry_run_writes_no_metrics(run_check, tmp_path):
    metrics = tmp_path / "whatsapp.prom"
    run_check("--dry-run", env={"HEALTHCHECK_METRICS_FILE": str(metrics)})
    assert not metrics.exists()


# -- systemd ---------------------------------------------------------------------------------------

def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: .ci/run must install systemd")
        pytest.skip("systemd-analyze is not installed")
    # The units name /opt/healthcheck_sessions: lay that out here, with real programs.
    folder = tmp_path / "opt"
    (folder / "logs").mkdir(parents=True)
    lay_command(folder)
    service = (ROOT / "deploy" / "healthcheck-sessions.service").read_text()
    service = service.replace("/opt/healthcheck_sessions/.venv/bin/python", sys.executable)
    service = service.replace("/opt/healthcheck_sessions", str(folder))
    service = re.sub(r"^(User|Group)=.*$", r"\1=root", service, flags=re.MULTILINE)
    (tmp_path / "healthcheck-sessions.service").write_text(service)
    shutil.copy(ROOT / "deploy" / "healthcheck-sessions.timer", tmp_path)
    done = subprocess.run([analyze, "verify", "--man=no", "./healthcheck-sessions.service",
                           "./healthcheck-sessions.timer"], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    timer = (ROOT / "deploy" / "healthcheck-sessions.timer").read_text()
    assert "OnCalendar=*:0/15" in timer and "Persistent=true" in timer
    assert "RandomizedDelaySec=" in timer
    assert "ProtectSystem=strict" in service and f"ReadWritePaths={folder}/logs" in service


# -- messages that name the real cause -------------------------------------------------------------

def test_base_url_ending_in_api_is_named(run_check, gateway):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": gateway.url + "/api/"})
    assert run.code == 3 and "ends in /api" in run.first_line


def test_https_on_a_plain_http_port_is_named(run_check, gateway):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": gateway.url.replace("http://", "https://")})
    assert run.code == 2 and "answered in plain HTTP" in run.stdout, run.stdout


def test_env_file_with_a_byte_order_mark_is_read(run_check, home, gateway):
    text = f"WPP_GATEWAY_BASE_URL={gateway.url}\nWPP_GATEWAY_SECRET={SECRET}\n"
    (home / ".env").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (home / ".env").chmod(0o600)
    run = run_check(write_dotenv=False)
    assert run.code == 0, run.stdout


def test_missing_env_file_is_named_as_missing(run_check, home):
    run = run_check(write_dotenv=False)
    assert run.code == 3
    assert "does not exist" in run.stdout and str(home / ".env") in run.stdout


def test_python_without_the_packages_says_which_and_how_to_fix(home, tmp_path):
    """Cron's /usr/bin/python3 where a venv was meant: one line, exit 3, no traceback."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / "bin" / "python"
    done = subprocess.run([str(python), str(home / COMMAND_NAME)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 3
    assert done.stdout.startswith("WHATSAPP SESSIONS UNKNOWN - the package requests is not "
                                  f"installed for {python}")
    assert "-m pip install -r requirements.txt" in done.stdout and ".venv/bin/python" in done.stdout
    assert "Traceback" not in done.stderr and len(done.stdout.splitlines()) == 1
    assert "is not installed" in (home / "logs" / "healthcheck-sessions.log").read_text()
