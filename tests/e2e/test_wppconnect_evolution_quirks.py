"""Issue 15 on WPPConnect-Server and Evolution API: what the real servers did that the watchdog
got wrong (items 1, 2, 4 and 5).

Each test runs the real script against the simulators of tests/support/backend_simulators.py,
which behave as the real servers were seen to: WPPConnect's start-session answers the previous
status and the session stays INITIALIZING a while, an unscanned QR ends CLOSED; Evolution
cannot connect an instance it has not loaded, and a dead connection flips close/connecting.
"""

import json

import pytest
from conftest import channels_of, settings_for
from gateway_simulator import Fault

STATUS_ENDPOINT = {"evolution": "state", "wppconnect": "status"}


def report_of(run) -> dict:
    return json.loads(run.stdout)


def needs_person(kind: str, sim, name: str):
    """A session that waits for a QR scan, each gateway's way."""
    if kind == "evolution":
        sim.add_instance(name, "close", code=401, on_connect="qr")
    else:
        sim.add_session(name, "QRCODE", page_alive=False, on_start="qr")


def connected(kind: str, sim, name: str):
    if kind == "evolution":
        sim.add_instance(name, "open")
    else:
        sim.add_session(name, "CONNECTED")


def break_reads(kind: str, sim, channel=None):
    sim.set_fault(STATUS_ENDPOINT[kind], Fault("response", status=500,
                                               body='{"status":"error"}', channel=channel))


# -- 1. a failed status read is not a vanished session ----------------------------------------

@pytest.mark.parametrize("kind", ["wppconnect", "evolution"])
def test_failed_status_read_keeps_the_incident_and_sends_no_false_resolved(
        run_check, backends, recorder, kind):
    sim = backends(kind)
    connected(kind, sim, "a")
    needs_person(kind, sim, "b")
    env = settings_for(kind, sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook",
                       HEALTHCHECK_EXPECTED_CHANNELS="a,b")
    first = run_check("--json", env=env)
    assert channels_of(first)["b"]["incident"]["alerted_at"], first.stdout
    since = channels_of(first)["b"]["incident"]["since"]
    assert len(recorder.requests) == 1

    break_reads(kind, sim, channel="b")
    unread = run_check("--json", env=env)
    b = channels_of(unread)["b"]
    assert b["outcome"] == "unknown" and "status unknown this run" in b["detail"], unread.stdout
    assert b["incident"]["since"] == since  # kept, not closed and reopened
    assert report_of(unread)["exit_code"] == 2
    assert "missing" not in unread.stdout and "no longer listed" not in unread.stdout
    assert len(recorder.requests) == 1, recorder.json_bodies()  # no false "resolved"
    text = run_check(env=env)
    assert "status unknown this run for 1: b" in text.first_line, text.stdout

    sim.faults.clear()
    again = run_check("--json", env=env)
    assert channels_of(again)["b"]["incident"]["since"] == since
    assert len(recorder.requests) == 1  # the same incident: not alerted afresh


@pytest.mark.parametrize("kind", ["wppconnect", "evolution"])
def test_every_status_read_failing_is_the_gateway_failing(run_check, backends, kind):
    sim = backends(kind)
    connected(kind, sim, "a")
    connected(kind, sim, "b")
    break_reads(kind, sim)
    run = run_check("--json", env=settings_for(kind, sim))
    report = report_of(run)
    assert report["exit_code"] == 2, run.stdout
    assert "every status read failed (2 " in report["error"]
    assert "so the gateway is failing" in report["error"]
    assert report["gateway_incident"] is not None
    assert "lists no channels at all" not in run.stdout


# -- 2. a WPPConnect session that lost its login looks stopped ---------------------------------

def test_wppconnect_unlinked_session_goes_to_a_person_once_and_backs_off(run_check, backends,
                                                                         recorder):
    # qr_seconds=0: the QR its start shows is closed unscanned by the next status read.
    sim = backends("wppconnect", start_seconds=0, qr_seconds=0)
    sim.add_session("a", "CONNECTED")
    sim.unlink("a")  # the phone unlinked the device: CLOSED, like a stopped session
    env = settings_for("wppconnect", sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook")
    first = run_check("--json", env=env)
    assert channels_of(first)["a"]["outcome"] == "start_session_requested", first.stdout
    assert recorder.requests == []  # one stopped run: it may just have been stopped

    second = run_check("--json", env=env)
    a = channels_of(second)["a"]
    assert a["condition"] == "needs_person" and a["gateway_status"] == "CLOSED", second.stdout
    assert "stored login is gone" in a["detail"] and "relaunches" not in a["detail"]
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["reason"] == "qr"

    later = [run_check(env=env) for _ in range(4)]
    assert all(r.code == 2 for r in later)
    assert any("not kicked this run" in r.stdout for r in later)
    assert sim.count("start") <= 5  # not every run: each start launches a browser
    assert len(recorder.requests) == 1  # told once

    sim.sessions["a"].update(status="CONNECTED", page_alive=True, on_start="recover")
    healed = run_check(env=env)
    assert healed.code == 0, healed.stdout
    assert recorder.json_bodies()[-1]["state"] == "RESOLVED"


def test_wppconnect_closed_with_its_last_qr_needs_a_person_before_any_restart(
        run_check, backends, recorder):
    # After a server restart its start-all showed a QR nobody scanned: CLOSED, with that QR.
    sim = backends("wppconnect", qr_seconds=0)
    sim.add_session("a", "QRCODE", page_alive=False, on_start="qr")
    env = settings_for("wppconnect", sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook")
    run = run_check("--json", env=env)
    a = channels_of(run)["a"]
    assert (a["gateway_status"], a["condition"]) == ("CLOSED", "needs_person"), run.stdout
    assert a["outcome"] == "qr_issued" and "relaunches" not in a["detail"]
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["reason"] == "qr"


def test_wppconnect_qr_after_the_start_is_read_in_the_same_run(run_check, backends, recorder):
    sim = backends("wppconnect", start_seconds=0)  # the QR stays up its 60 s
    sim.add_session("a", "CONNECTED")
    sim.unlink("a")
    run = run_check("--json", env=settings_for(
        "wppconnect", sim, HEALTHCHECK_VERIFY_SECONDS="0.2",
        HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook"))
    a = channels_of(run)["a"]
    assert a["outcome"] == "qr_issued" and "QRCODE after the revive" in a["detail"], run.stdout
    assert report_of(run)["exit_code"] == 2
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["reason"] == "qr"


def test_wppconnect_stopped_session_with_its_login_is_still_just_started(run_check, backends,
                                                                         recorder):
    sim = backends("wppconnect", start_seconds=0)
    sim.add_session("a", "CLOSED", page_alive=False, on_start="recover")
    env = settings_for("wppconnect", sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook")
    first = run_check("--json", env=env)
    assert channels_of(first)["a"]["outcome"] == "start_session_requested"
    second = run_check(env=env)
    assert second.code == 0 and recorder.requests == [], second.stdout


# -- 4. an Evolution instance the running server has not loaded --------------------------------

def test_evolution_instance_not_loaded_says_restart_evolution_once_and_backs_off(
        run_check, backends, recorder):
    sim = backends("evolution")
    sim.add_instance("a", memory=None, db="open")  # in the database, not in this process
    env = settings_for("evolution", sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook")
    first = run_check(env=env)
    assert first.code == 2
    line = [t for t in first.stdout.splitlines() if t.startswith("channel a:")]
    assert len(line) == 1 and "restart the Evolution process" in line[0], first.stdout
    assert "the next run" not in first.stdout
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["reason"] == "restart"
    assert "restart the Evolution process" in alert["text"]

    later = [run_check("--json", env=env) for _ in range(5)]
    assert all(report_of(r)["exit_code"] == 2 for r in later)
    assert sim.count("connect") <= 4  # backed off as for a QR, not every run
    waiting = [channels_of(r)["a"] for r in later if channels_of(r)["a"]["action"] != "kick"]
    assert waiting and all("must be restarted" in c["detail"] for c in waiting)
    assert all(c["outcome"] == "restart_pending" for c in waiting)
    assert len(recorder.requests) == 1  # alerted once

    sim.instances["a"]["memory"] = "open"  # Evolution restarted: loaded and connected
    healed = run_check(env=env)
    assert healed.code == 0, healed.stdout
    assert recorder.json_bodies()[-1]["state"] == "RESOLVED"


# -- 5. Evolution's own reconnect loop ----------------------------------------------------------

def test_evolution_instance_flipping_close_connecting_is_one_transient_incident(
        run_check, backends, recorder):
    sim = backends("evolution")
    # flip_seconds=0: each state read sees the other word, as runs minutes apart would.
    sim.add_instance("a", memory="close", db="open", flip_seconds=0)
    env = settings_for("evolution", sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook",
                       HEALTHCHECK_ALERT_AFTER="2")
    runs = [run_check("--json", env=env) for _ in range(5)]
    words = [channels_of(r)["a"]["gateway_status"] for r in runs]
    assert set(words) == {"close", "connecting"}, words
    # Only the first sighting of close (not yet known to flip) is connected; after that the
    # runs that catch close leave it to its grace, like those that catch connecting.
    assert sim.count("connect") + sim.count("restart") == 1, [r.stdout for r in runs]
    assert [channels_of(r)["a"]["outcome"] for r in runs[1:]] == ["in_grace"] * 4
    since = {channels_of(r)["a"]["incident"]["since"] for r in runs}
    assert len(since) == 1  # one incident all along
    assert recorder.requests == []  # in its grace: reported, not alerted

    over = {**env, "HEALTHCHECK_STARTING_GRACE_MINUTES": "0"}
    stuck = run_check("--json", env=over)
    a = channels_of(stuck)["a"]
    assert a["outcome"] == "stuck" and "still flipping between close and connecting" in \
        a["detail"], stuck.stdout
    assert sim.count("connect") + sim.count("restart") == 2  # revived once, past the grace
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["reason"] == "stuck"
    assert "flips between close and connecting" in alert["text"]

    after = [run_check("--json", env=over) for _ in range(2)]
    assert all(channels_of(r)["a"]["outcome"] == "stuck" for r in after)
    assert sim.count("connect") + sim.count("restart") == 2  # not revived every run
    assert len(recorder.requests) == 1  # alerted once


def test_evolution_qr_that_ends_close_stays_with_a_person_not_a_loop(run_check, backends,
                                                                    recorder):
    sim = backends("evolution")
    sim.add_instance("a", memory="connecting", db="connecting", on_connect="qr")  # a QR is up
    env = settings_for("evolution", sim, HEALTHCHECK_ALERT_WEBHOOK_URL=recorder.url + "/hook",
                       HEALTHCHECK_STARTING_GRACE_MINUTES="0")
    run_check(env=env)
    sim.instances["a"]["memory"] = "close"  # the QR limit: memory close, the database stays
    run = run_check("--json", env=env)
    a = channels_of(run)["a"]
    assert a["outcome"] != "stuck" and a["action"] not in ("wait_loop", "revive_loop"), run.stdout
    assert [i["reason"] for b in recorder.json_bodies() for i in b["items"]] == ["qr"]
