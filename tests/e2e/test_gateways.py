"""WAHA, Evolution API and WPPConnect-Server: every condition, the revive calls, the quirks.

Each test runs the real script against a simulator of that gateway. After every test, the
simulator must not have received one call that destroys a login or stops the server.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import BACKEND_KEY, channels_of, settings_for
from gateway_simulator import Fault, html_fault, json_fault


def with_sessions(kind, make, **conditions):
    """A simulator of `kind` with one session per condition named, set the gateway's way."""
    sim = make(kind)
    for name, condition in conditions.items():
        if kind == "waha":
            status, on = {"connected": ("WORKING", "recover"), "stopped": ("STOPPED", "recover"),
                          "needs_person": ("SCAN_QR_CODE", "qr"),
                          "transient": ("STARTING", "recover"),
                          "failed": ("FAILED", "recover")}[condition]
            sim.add_session(name, status, on)
        elif kind == "evolution":
            memory, db, code, on = {"connected": ("open", "open", None, "recover"),
                                    "stopped": ("close", "close", None, "recover"),
                                    "needs_person": ("close", "close", 401, "qr"),
                                    # a plain reconnect leaves the database at open
                                    "transient": ("connecting", "open", None, "recover"),
                                    "failed": ("close", "open", None, "recover")}[condition]
            sim.add_instance(name, memory, db=db, code=code, on_connect=on)
        else:
            status, alive, on = {"connected": ("CONNECTED", True, "recover"),
                                 "stopped": ("CLOSED", False, "recover"),
                                 "needs_person": ("QRCODE", False, "qr"),
                                 "transient": ("INITIALIZING", False, "recover"),
                                 "failed": ("CONNECTED", False, "recover")}[condition]
            sim.add_session(name, status, alive, on)
    return sim


KINDS = ["waha", "evolution", "wppconnect"]
REVIVE_ENDPOINT = {"waha": "revive", "evolution": "connect", "wppconnect": "start"}


# -- every condition ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_all_connected_is_silent(run_check, backends, kind):
    sim = with_sessions(kind, backends, a="connected", b="connected")
    run = run_check(env=settings_for(kind, sim))
    assert run.code == 0 and run.stdout == "", run.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_stopped_session_is_revived_without_losing_its_login(run_check, backends, kind):
    sim = with_sessions(kind, backends, a="connected", b="stopped")
    run = run_check("--json", env=settings_for(kind, sim, HEALTHCHECK_VERIFY_SECONDS="0.2"))
    report = json.loads(run.stdout)
    assert report["gateway"] == kind and report["exit_code"] == 1, run.stdout
    b = channels_of(run)["b"]
    assert b["condition"] == "stopped" and b["verified"] == "reconnected"
    assert b["outcome"] in ("reconnect_requested", "start_session_requested")
    assert channels_of(run)["a"]["condition"] == "connected"
    assert [c["channel"] for c in sim.calls(REVIVE_ENDPOINT[kind])] == ["b"]


@pytest.mark.parametrize("kind", KINDS)
def test_session_that_needs_a_person_is_alerted_at_once_and_backs_off(run_check, backends,
                                                                    recorder, kind):
    sim = with_sessions(kind, backends, a="needs_person")
    env = settings_for(kind, sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook")
    first = run_check(env=env)
    assert first.code == 2, first.stdout
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["reason"] == "qr"
    later = [run_check(env=env) for _ in range(4)]
    # Kicked on runs 1, 2, 4... of the QR phase (Evolution's first connect turns close into
    # connecting, a new status, which starts the phase once more).
    assert any("not kicked this run" in r.stdout and "next kick on run" in r.stdout
               for r in later)
    assert all(r.code == 2 for r in later)
    assert len(sim.calls(REVIVE_ENDPOINT[kind])) <= 4
    assert len(recorder.requests) == 1  # told once, not every run


@pytest.mark.parametrize("kind", KINDS)
def test_starting_session_is_left_alone_inside_its_grace(run_check, backends, recorder, kind):
    sim = with_sessions(kind, backends, a="transient")
    env = settings_for(kind, sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook",
                       HEALTHCHECK_ALERT_AFTER="1")
    run = run_check("--json", env=env)
    a = channels_of(run)["a"]
    assert (a["condition"], a["action"], a["outcome"]) == ("transient", "wait_grace", "in_grace")
    assert json.loads(run.stdout)["exit_code"] == 1
    assert recorder.requests == []  # reported and logged, not alerted
    assert sim.count(REVIVE_ENDPOINT[kind]) == 0 and sim.count("close") == 0


@pytest.mark.parametrize("kind", ["waha", "evolution"])
def test_starting_session_past_its_grace_is_revived(run_check, backends, kind):
    sim = with_sessions(kind, backends, a="transient")
    run = run_check(env=settings_for(kind, sim, HEALTHCHECK_STARTING_GRACE_MINUTES="0"))
    assert run.code == 1, run.stdout
    assert sim.count("revive" if kind == "waha" else "restart") == 1


def test_wppconnect_initializing_past_its_grace_goes_to_a_person_never_closed(
        run_check, backends, recorder):
    sim = with_sessions("wppconnect", backends, a="transient")
    run = run_check(env=settings_for("wppconnect", sim, HEALTHCHECK_STARTING_GRACE_MINUTES="0",
                                     HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook"))
    assert run.code == 2 and "a (stuck)" in run.first_line, run.stdout
    assert "never closes a session that is starting" in run.stdout
    assert sim.count("close") == 0 and sim.count("start") == 0
    assert not sim.sessions["a"]["browser_leaked"]
    [alert] = recorder.json_bodies()
    assert "restart the gateway server process" in alert["text"]


def test_forced_run_never_closes_an_initializing_wppconnect_session(run_check, backends):
    sim = with_sessions("wppconnect", backends, a="transient")
    run_check("--force", env=settings_for("wppconnect", sim))
    assert sim.count("close") == 0 and not sim.sessions["a"]["browser_leaked"]


# -- connected is not alive -----------------------------------------------------------------------

def test_wppconnect_connected_with_a_dead_page_is_closed_and_started(run_check, backends):
    sim = with_sessions("wppconnect", backends, a="failed")
    run = run_check("--json", env=settings_for("wppconnect", sim,
                                               HEALTHCHECK_VERIFY_SECONDS="0.2"))
    a = channels_of(run)["a"]
    assert a["gateway_status"] == "CONNECTED" and a["condition"] == "stopped"
    assert [r["endpoint"] for r in sim.requests if r["endpoint"] in ("close", "start")] == \
        ["close", "start"]
    assert a["verified"] == "reconnected"


def test_waha_failed_session_is_restarted_never_started(run_check, backends):
    sim = with_sessions("waha", backends, default="failed")
    run = run_check(env=settings_for("waha", sim))
    assert run.code == 1
    assert sim.count("revive") == 1 and sim.count("start") == 0


@pytest.mark.parametrize("kind", ["waha", "evolution", "wppconnect"])
def test_silent_channel_is_restarted_when_asked(run_check, backends, sqlite_db, kind):
    sim = with_sessions(kind, backends, pixel12digital="connected")
    now = datetime.now(timezone.utc)
    sqlite_db.add("pixel12digital", [now - timedelta(days=8) + timedelta(minutes=10 * i)
                                     for i in range(8 * 144 - 12)])
    run = run_check("--json", env={**settings_for(kind, sim, HEALTHCHECK_SILENT_ACTION="restart"),
                                   **sqlite_db.settings()})
    channel = channels_of(run)["pixel12digital"]
    assert channel["action"] == "restart_silent" and channel["last_inbound_at"], run.stdout
    restarts = {"waha": "revive", "evolution": "restart", "wppconnect": "start"}[kind]
    assert sim.count(restarts) == 1
    if kind == "wppconnect":
        assert sim.count("close") == 1


def test_wrapper_has_no_restart_so_a_silent_channel_is_alerted_only(run_check, gateway,
                                                                   sqlite_db):
    now = datetime.now(timezone.utc)
    sqlite_db.add("pixel12digital", [now - timedelta(days=8) + timedelta(minutes=10 * i)
                                     for i in range(8 * 144 - 12)])
    run = run_check("--json", env={"HEALTHCHECK_SILENT_ACTION": "restart",
                                   **sqlite_db.settings()})
    assert channels_of(run)["pixel12digital"]["action"] == "alert_silent"
    assert gateway.count("qr") == 0


# -- each gateway's quirks ------------------------------------------------------------------------

@pytest.mark.parametrize("engine", [{"engine": "WEBJS", "state": "OPENING"},
                                    {"engine": "GOWS", "gows": {"found": True, "connected": False},
                                     "grpc": {"client": "READY", "stream": "READY"}}])
def test_waha_working_session_whose_engine_is_down_is_restarted(run_check, backends, engine):
    sim = backends("waha")
    sim.add_session("default", "WORKING", engine=engine)
    run = run_check("--json", env=settings_for("waha", sim, HEALTHCHECK_VERIFY_SECONDS="0.2"))
    channel = channels_of(run)["default"]
    assert channel["gateway_status"] == "WORKING" and channel["condition"] == "stopped"
    assert channel["verified"] == "reconnected" and sim.count("revive") == 1


def test_waha_stopped_session_is_seen_because_all_is_asked(run_check, backends):
    sim = with_sessions("waha", backends, default="stopped")
    run_check(env=settings_for("waha", sim))
    assert "all=true" in sim.calls("list")[0]["path"]
    assert sim.count("revive") == 1


def test_evolution_live_state_wins_over_the_stale_database(run_check, backends):
    sim = backends("evolution")
    sim.add_instance("a", memory="close", db="open")  # the database still says open
    run = run_check("--json", env=settings_for("evolution", sim))
    assert channels_of(run)["a"]["gateway_status"] == "close"
    assert sim.count("connect") == 1


def test_evolution_200_with_error_is_a_failed_revive(run_check, backends):
    sim = backends("evolution")
    sim.add_instance("a", memory="close")
    sim.set_fault("connect", json_fault(200, {"error": True, "message": "Connection Closed"}))
    run = run_check(env=settings_for("evolution", sim))
    assert run.code == 2
    assert "connect call refused (HTTP 200 with an error): Connection Closed" in run.stdout


def test_evolution_license_required_is_one_line(run_check, backends):
    sim = backends("evolution")
    sim.license_required = True
    run = run_check(env=settings_for("evolution", sim))
    assert run.code == 2 and "503 LICENSE_REQUIRED" in run.first_line
    assert "activate its license" in run.first_line


def test_evolution_logged_out_instance_needs_a_person(run_check, backends):
    sim = backends("evolution")
    sim.add_instance("a", memory="close", code=401, on_connect="qr")
    run = run_check("--json", env=settings_for("evolution", sim))
    a = channels_of(run)["a"]
    assert a["condition"] == "needs_person" and a["outcome"] == "qr_issued"


def test_wppconnect_start_session_gets_an_empty_body(run_check, backends):
    sim = with_sessions("wppconnect", backends, a="stopped")
    run_check(env=settings_for("wppconnect", sim))
    [start] = sim.calls("start")
    assert start["body"] == b"{}"
    assert sim.sessions["a"]["config"] == {"webhook": "https://panel"}  # kept


def test_wppconnect_wrong_secret_is_one_line(run_check, backends):
    sim = with_sessions("wppconnect", backends, a="connected")
    run = run_check(env={**settings_for("wppconnect", sim),
                         "HEALTHCHECK_GATEWAY_KEY": "wrong-key-0000000000"})
    assert run.code == 2
    assert "refused the key (SECRET_KEY); check HEALTHCHECK_GATEWAY_KEY" in run.first_line
    assert sim.count("token") == 0


def test_wppconnect_secret_and_tokens_never_leave(run_check, backends):
    sim = with_sessions("wppconnect", backends, a="connected", b="stopped", c="needs_person")
    run = run_check("--json", env=settings_for("wppconnect", sim))
    run_text = run_check(env=settings_for("wppconnect", sim)).everything()
    tokens = [t for ts in sim.tokens.values() for t in ts]
    assert tokens
    for text in (run.everything(), run_text):
        assert BACKEND_KEY not in text and BACKEND_KEY[:8] not in text
        for token in tokens:
            assert token not in text and token[7:20] not in text


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_key_names_the_setting(run_check, backends, kind):
    sim = with_sessions(kind, backends, a="connected")
    run = run_check(env={**settings_for(kind, sim),
                         "HEALTHCHECK_GATEWAY_KEY": "wrong-key-0000000000"})
    assert run.code == 2, run.stdout
    assert "HEALTHCHECK_GATEWAY_KEY" in run.stdout and "WPP_GATEWAY" not in run.stdout


# -- the same fault matrix as the wrapper, on each gateway's list ---------------------------------

FAULTS = {
    "refused": None,
    "reset": Fault("reset"),
    "hang": Fault("hang"),
    "trickle": Fault("trickle", body=b'{"x": 1}' * 50, interval=0.5),
    "HTML 502": html_fault(502),
    "401": Fault("response", status=401, body='{"message":"Unauthorized"}'),
    "invalid JSON": Fault("response", body="{not json"),
    "huge body": Fault("big", size=11 * 1024 * 1024),
}
EXIT = {"refused": 2, "reset": 2, "hang": 2, "trickle": 2, "HTML 502": 2, "401": 2,
        "invalid JSON": 3, "huge body": 3}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("kind", KINDS)
def test_fault_matrix_on_the_list(run_check, backends, kind, fault):
    sim = with_sessions(kind, backends, a="stopped")
    env = settings_for(kind, sim)
    if fault == "refused":
        from conftest import free_port
        env["HEALTHCHECK_GATEWAY_URL"] = f"http://127.0.0.1:{free_port()}"
    else:
        sim.set_fault("list", FAULTS[fault])
    run = run_check(env=env)
    assert run.code == EXIT[fault], run.stdout + run.stderr
    assert run.first_line.startswith("WHATSAPP SESSIONS") and run.log
    assert "Traceback" not in run.stdout + run.stderr
    assert BACKEND_KEY not in run.everything()


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_revive_is_one_line_and_the_others_go_on(run_check, backends, kind):
    sim = with_sessions(kind, backends, a="stopped", b="stopped")
    endpoint = REVIVE_ENDPOINT[kind]
    sim.set_fault(endpoint, Fault("response", status=500, body="<html>500</html>",
                                  content_type="text/html", channel="a"))
    run = run_check("--json", env=settings_for(kind, sim))
    outcomes = {k: c["outcome"] for k, c in channels_of(run).items()}
    assert outcomes["a"] == "failed" and outcomes["b"] != "failed"
    assert json.loads(run.stdout)["exit_code"] == 2


@pytest.mark.parametrize("kind", ["evolution", "wppconnect"])
def test_a_session_whose_state_cannot_be_read_is_named(run_check, backends, kind):
    sim = with_sessions(kind, backends, a="connected", b="connected")
    sim.set_fault("state" if kind == "evolution" else "status",
                  Fault("response", status=500, body="{}", channel="b"))
    run = run_check(env=settings_for(kind, sim))
    assert run.code == 2 and "channel b: status (unknown)" in run.stdout
    assert "could not be read" in run.stdout
