"""The process under stress and a gateway that lies (hostile issue: the "Also" list)."""

import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import COMMAND_NAME, ROOT, SECRET, write_env
from gateway_simulator import Fault, GatewaySimulator, json_fault
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(ROOT))
from healthcheck.cli import main

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
channel_entries = st.dictionaries(st.sampled_from(["id", "name", "channel_id", "status", "x"]),
                                  json_values | st.sampled_from(["connected", "qr_required"]),
                                  max_size=4)
channel_lists = (json_values
                 | st.lists(channel_entries, max_size=6)
                 | st.fixed_dictionaries({"success": json_values,
                                          "channels": st.lists(channel_entries | json_values,
                                                               max_size=6)})
                 | st.fixed_dictionaries({"data": st.fixed_dictionaries(
                     {"channels": st.lists(channel_entries, max_size=6)})}))


@pytest.fixture(scope="module")
def shared_gateway():
    sim = GatewaySimulator(secret=SECRET).start()
    yield sim
    sim.stop()


def env_for(folder: Path, url: str) -> Path:
    env_file = folder / "hypothesis.env"
    write_env(env_file, {"WPP_GATEWAY_BASE_URL": url, "WPP_GATEWAY_SECRET": SECRET,
                         "HEALTHCHECK_LOG_FILE": str(folder / "logs" / "hc.log"),
                         "HEALTHCHECK_VERIFY_SECONDS": "0", "HEALTHCHECK_DEADLINE": "10",
                         "HEALTHCHECK_QR_TIMEOUT": "2", "HEALTHCHECK_LIST_TIMEOUT": "2"})
    return env_file


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=channel_lists)
def test_arbitrary_json_list_never_breaks_the_check(shared_gateway, tmp_path_factory, payload):
    folder = tmp_path_factory.mktemp("prop")
    shared_gateway.raw_list = payload
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        # In-process, so an unexpected exception fails the test with its traceback.
        code = main(["--json", "--env-file",
                                          str(env_for(folder, shared_gateway.url))])
    assert 0 <= code <= 3
    report = json.loads(out.getvalue())
    assert report["exit_code"] == code


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=channel_lists)
def test_arbitrary_json_list_as_a_subprocess_exits_0_to_3(shared_gateway, tmp_path_factory,
                                                          payload):
    folder = tmp_path_factory.mktemp("prop")
    shared_gateway.raw_list = payload
    done = subprocess.run([sys.executable, str(ROOT / "healthcheck_sessions.py"), "--env-file",
                           str(env_for(folder, shared_gateway.url))], capture_output=True,
                          text=True, timeout=60, check=False)
    assert 0 <= done.returncode <= 3
    assert "Traceback" not in done.stdout + done.stderr


def start(home, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WPP_", "HEALTHCHECK_"))}
    return subprocess.Popen([sys.executable, str(home / COMMAND_NAME), *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum, name", [(signal.SIGTERM, "SIGTERM"),
                                          (signal.SIGINT, "SIGINT")])
def test_signal_mid_run_logs_releases_the_lock_and_keeps_the_state(run_check, gateway, home,
                                                                   tmp_path, signum, name):
    gateway.add_channel("imobsites", "disconnected", "stay_down")
    run_check()
    state_file = home / "logs" / "healthcheck-state.json"
    before = state_file.read_text()
    gateway.set_fault("qr", Fault("hang"))
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                              "HEALTHCHECK_QR_TIMEOUT": "60", "HEALTHCHECK_VERIFY_SECONDS": "0"})
    process = start(home, tmp_path)
    limit = time.monotonic() + 20
    while len(gateway.calls("qr")) < 2 and time.monotonic() < limit:
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 3
    assert stdout.startswith(f"WHATSAPP SESSIONS UNKNOWN - run interrupted by {name}")
    assert "Traceback" not in stdout + stderr
    assert f"run interrupted by {name}" in (home / "logs" / "healthcheck-sessions.log").read_text()
    assert state_file.read_text() == before
    with open(home / "logs" / "healthcheck-sessions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: would raise if held


def test_two_runs_at_the_same_instant_make_one_set_of_calls(gateway, home, tmp_path):
    gateway.add_channel("imobsites", "disconnected")
    gateway.latency["list"] = 3.0  # the first run holds the lock well past the second's start
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                              "HEALTHCHECK_VERIFY_SECONDS": "0"})
    first, second = start(home, tmp_path), start(home, tmp_path)
    outputs = [p.communicate(timeout=30)[0] for p in (first, second)]
    assert sorted([first.returncode, second.returncode]) == [1, 3]
    assert gateway.count("list") == 1 and gateway.count("qr") == 1
    assert any("another run is in progress" in out for out in outputs)


def test_env_file_that_others_can_read_gets_a_warning(gateway, home, tmp_path):
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET},
              mode=0o644)
    process = start(home, tmp_path)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "can be read by every user of this machine and holds the gateway secret" in stderr
    assert f"chmod 600 {home / '.env'}" in stderr
    assert "holds the gateway secret" in (home / "logs" / "healthcheck-sessions.log").read_text()
    # Said once, not in every cron mail; again on a --verbose run.
    process = start(home, tmp_path)
    assert process.communicate(timeout=30)[1] == ""
    process = start(home, tmp_path, "--verbose")
    assert "holds the gateway secret" in process.communicate(timeout=30)[1]


def test_group_readable_env_file_is_normal(run_check, home):
    run = run_check(write_dotenv=True)
    (home / ".env").chmod(0o640)  # the web server's group reads the panel's .env
    run = run_check(write_dotenv=False)
    assert run.stderr == ""


def test_private_env_file_gets_no_warning(run_check):
    assert run_check().stderr == ""


def test_channel_id_cannot_forge_log_lines(run_check, gateway):
    forged = "x\n2026-01-01T00:00:00+00:00 OK       [healthcheck_sessions run=deadbeef] all fine"
    gateway.add_channel(forged, "disconnected")
    gateway.add_channel("long" * 10000, "disconnected")
    run = run_check()
    lines = run.log.splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert len(lines) == 3  # the summary and one line per channel
    assert max(len(line) for line in lines) < 1500


def test_error_text_cannot_forge_log_lines(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(500, {"success": False,
                                             "error": "boom\r\n2026-01-01 OK fake\x1b[2J"}))
    run = run_check()
    assert "boom??2026-01-01 OK fake?[2J" in run.log
    assert not any(line.startswith("2026-01-01") for line in run.log.splitlines())


def test_thousands_of_bad_entries_cannot_flood_the_log(run_check, gateway):
    gateway.raw_list = {"channels": [{"id": None}] * 5000}
    run = run_check()
    assert run.code == 3
    assert len(run.log.splitlines()) < 60
    assert "... and 4961 more problems" in run.log  # 5000 entries and the empty list
