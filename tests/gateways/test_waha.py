"""WAHA's client (gateways/waha.py) in-process against the WAHA simulator.

The client comes from the registry with Settings read from a plain dict; its calls go over real
HTTP to tests/support/backend_simulators.py's WahaSimulator, which answers a restart with
STARTING, as the real server does, and shows what it came to only in a later read. No call
may destroy a login or stop the server.
"""

import sys

import pytest
from backend_simulators import WahaSimulator
from conftest import BACKEND_KEY, ROOT, gateway_client, listed_channels, settings_for
from gateway_simulator import html_fault

sys.path.insert(0, str(ROOT))
from healthcheck.errors import HealthcheckError
from healthcheck.model import Channel, Revival


def start_simulator():
    """One WAHA simulator for the whole module."""
    return WahaSimulator(secret=BACKEND_KEY).start()


def empty(simulator):
    simulator.sessions.clear()


def client(sim, **extra):
    return gateway_client({**settings_for("waha", sim), **extra})


def test_each_waha_status_maps_onto_its_condition(sim):
    sim.add_session("working", "WORKING").add_session("stopped", "STOPPED") \
        .add_session("qr", "SCAN_QR_CODE").add_session("starting", "STARTING") \
        .add_session("failed", "FAILED")
    channels = listed_channels(client(sim))
    assert {name: (c.status, c.condition) for name, c in channels.items()} == {
        "working": ("WORKING", "connected"), "stopped": ("STOPPED", "stopped"),
        "qr": ("SCAN_QR_CODE", "needs_person"), "starting": ("STARTING", "transient"),
        "failed": ("FAILED", "stopped")}
    assert channels["failed"].detail.startswith("FAILED: restarted")


def test_the_listing_asks_for_stopped_sessions_too_with_the_key_header(sim):
    sim.add_session("stopped", "STOPPED")
    assert list(listed_channels(client(sim))) == ["stopped"]  # without all=true WAHA hides it
    [call] = sim.calls("list")
    assert call["path"] == "/api/sessions?all=true"
    assert call["headers"]["X-Api-Key"] == BACKEND_KEY


def test_a_working_session_whose_engine_is_dead_is_stopped(sim):
    sim.add_session("webjs", "WORKING", engine={"engine": "WEBJS", "state": "UNPAIRED"})
    sim.add_session("gows", "WORKING", engine={"engine": "GOWS", "gows": {"connected": False}})
    sim.add_session("fine", "WORKING", engine={"engine": "WEBJS", "state": "CONNECTED"})
    channels = listed_channels(client(sim))
    assert channels["webjs"] == Channel("webjs", "WORKING", "stopped",
                                        "WORKING, but its WEBJS page says UNPAIRED: restarted")
    assert channels["gows"].detail == ("WORKING, but its GOWS engine says it is not connected: "
                                       "restarted")
    assert channels["fine"].condition == "connected"
    assert sorted(c["channel"] for c in sim.calls("info")) == ["fine", "gows", "webjs"]


def test_a_stopped_session_is_restarted_and_the_next_read_shows_it_working(sim):
    sim.add_session("default", "STOPPED", on_restart="recover")
    gateway = client(sim)
    revival = gateway.revive(Channel("default", "STOPPED"))
    assert revival == Revival("reconnect_requested", "restart requested: WAHA restarts the "
                                                  "session from its stored login")
    assert [c["path"] for c in sim.calls("revive")] == ["/api/sessions/default/restart"]
    assert gateway.list_sessions().channels == [Channel("default", "WORKING", "connected")]


def test_a_connected_session_is_restarted_for_a_silence(sim):
    sim.add_session("default", "WORKING")
    revival = client(sim).revive(Channel("default", "WORKING", "connected"), restart=True)
    assert revival.outcome == "reconnect_requested" and sim.count("revive") == 1
    assert sim.count("start") == 0  # never /start: Core answers 422 on FAILED


def test_a_restart_of_an_unknown_session_is_a_failed_revive(sim):
    revival = client(sim).revive(Channel("gone", "STOPPED"))
    assert revival == Revival("failed", "restart call: HTTP 404, gateway error: Not Found")


def test_a_wrong_key_on_a_restart_is_a_failed_revive_naming_the_setting(sim):
    sim.add_session("default", "STOPPED")
    revival = client(sim, HEALTHCHECK_GATEWAY_KEY="wrong-key-000").revive(
        Channel("default", "STOPPED"))
    assert revival.outcome == "failed" and "check HEALTHCHECK_GATEWAY_KEY" in revival.detail
    assert sim.sessions["default"]["status"] == "STOPPED"


@pytest.mark.parametrize("fault, advice", [
    (html_fault(502), "check the gateway"),
    (html_fault(404), "is the port in HEALTHCHECK_GATEWAY_URL right (:3000)?"),
])
def test_a_failed_listing_gives_wahas_own_advice(sim, fault, advice):
    # The wrapper's advice names WPPConnect behind it and port 8443; WAHA has neither.
    sim.set_fault("list", fault)
    with pytest.raises(HealthcheckError) as caught:
        client(sim).list_sessions()
    assert advice in str(caught.value)
    assert "WPPConnect" not in str(caught.value) and "8443" not in str(caught.value)
