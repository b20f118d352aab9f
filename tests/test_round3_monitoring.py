"""Round three, the monitoring stack: Prometheus rules under promtool, pings that never answer,
the combined state, and the small lies of the Nagios output (issue 14, items 11, 12, 14, 17)."""

import json
import re
import socket
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from conftest import ROOT, free_port

sys.path.insert(0, str(ROOT))
import healthcheck_sessions as hs

NOW = datetime.now(timezone.utc)


def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


def perfdata_items(run) -> dict:
    return dict(item.split(";", 1)[0].split("=", 1) for item in run.perfdata.split())


# -- 14. CRITICAL > WARNING > UNKNOWN > OK --------------------------------------------------------

def test_combined_state_follows_the_monitoring_plugins_order():
    C, W, U, O = hs.CRITICAL, hs.WARNING, hs.UNKNOWN, hs.OK
    assert hs.worst_state([U, C]) == C
    assert hs.worst_state([U, W]) == W
    assert hs.worst_state([O, U]) == U
    assert hs.worst_state([O]) == O and hs.worst_state([]) == O
    report = hs.Report(channels=[hs.ChannelReport("lost", "qr", False, "qr_issued")],
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
    from test_activity import busy
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
