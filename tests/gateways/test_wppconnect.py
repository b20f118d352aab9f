"""WPPConnect-Server's client (gateways/wppconnect.py) in-process against its simulator.

The client comes from the registry with Settings read from a plain dict; its calls go over real
HTTP to tests/support/backend_simulators.py's WppconnectSimulator: the key in the listing's
path, a token minted per session, a start-session that answers the status from before it.
Sessions start at once here (start_seconds 0), so no test waits. No call may log out, clear
a session's data or stop the server.
"""

import sys

import pytest
from backend_simulators import WppconnectSimulator
from conftest import BACKEND_KEY, ROOT, gateway_client, settings_for

sys.path.insert(0, str(ROOT))
from healthcheck.constants import WPPCONNECT_LOGIN_GONE
from healthcheck.errors import HealthcheckError
from healthcheck.model import Channel


def start_simulator():
    """One WPPConnect-Server simulator for the whole module; sessions start at once."""
    return WppconnectSimulator(secret=BACKEND_KEY, start_seconds=0.0).start()


def empty(simulator):
    simulator.sessions.clear()
    simulator.tokens.clear()


def client(sim, **extra):
    return gateway_client({**settings_for("wppconnect", sim), **extra})


def test_each_status_maps_onto_its_condition(sim):
    sim.add_session("up", "CONNECTED").add_session("closed", "CLOSED") \
        .add_session("qr", "QRCODE").add_session("booting", "INITIALIZING") \
        .add_session("code", "PHONECODE").add_session("gone", None)
    channels = {c.id: c for c in client(sim).list_sessions().channels}
    assert {name: (c.status, c.condition) for name, c in channels.items()} == {
        "up": ("CONNECTED", "connected"), "closed": ("CLOSED", "stopped"),
        "qr": ("QRCODE", "needs_person"), "booting": ("INITIALIZING", "transient"),
        "code": ("PHONECODE", "needs_person"), "gone": ("CLOSED", "stopped")}


def test_the_key_goes_in_the_listings_path_and_each_session_gets_one_token(sim):
    sim.add_session("a", "CONNECTED").add_session("b", "CLOSED")
    gateway = client(sim)
    gateway.list_sessions()
    gateway.list_sessions()
    [first, _] = sim.calls("list")
    assert first["path"] == f"/api/{BACKEND_KEY}/show-all-sessions"
    assert sorted(c["channel"] for c in sim.calls("token")) == ["a", "b"]  # minted once
    # A token is as good as the key for its session: the run hides it like the key.
    [token] = sim.tokens["a"]
    assert gateway.settings.redact(f"Bearer {token}") == "Bearer ***"


def test_connected_with_a_dead_page_is_stopped(sim):
    sim.add_session("a", "CONNECTED", page_alive=False)
    [channel] = client(sim).list_sessions().channels
    assert channel == Channel("a", "CONNECTED", "stopped",
                              "CONNECTED but its page is dead (check-connection-session says "
                              "false)")


def test_closed_with_the_last_qr_it_showed_is_a_lost_login(sim):
    sim.add_session("a", "QRCODE")
    sim.sessions["a"]["closes_at"] = 0  # the unscanned QR timed out: autoClose
    [channel] = client(sim).list_sessions().channels
    assert channel == Channel("a", "CLOSED", "needs_person", WPPCONNECT_LOGIN_GONE)


def test_a_closed_session_is_started_with_an_empty_body_and_connects(sim):
    sim.add_session("a", "CLOSED", on_start="recover")
    gateway = client(sim)
    revival = gateway.revive(Channel("a", "CLOSED"))
    assert revival.outcome == "start_session_requested"
    [start] = sim.calls("start")
    assert start["body"] == b"{}"  # any other body would replace its webhook settings
    assert sim.sessions["a"]["config"] == {"webhook": "https://panel"}
    assert gateway.list_sessions().channels == [Channel("a", "CONNECTED", "connected")]


def test_a_connected_session_with_a_dead_page_is_closed_then_started(sim):
    sim.add_session("a", "CONNECTED", page_alive=False)
    revival = client(sim).revive(Channel("a", "CONNECTED", "stopped"))
    assert revival.outcome == "start_session_requested"
    assert [r["endpoint"] for r in sim.requests if r["endpoint"] in ("close", "start")] == \
        ["close", "start"]


def test_a_qr_waiting_or_a_starting_session_is_never_touched(sim):
    sim.add_session("qr", "QRCODE").add_session("booting", "INITIALIZING")
    gateway = client(sim)
    assert gateway.revive(Channel("qr", "QRCODE", "needs_person")).outcome == "qr_issued"
    revival = gateway.revive(Channel("booting", "INITIALIZING", "transient"))
    assert revival.outcome == "failed" and "INITIALIZING" in revival.detail
    assert sim.count("start") == 0 and sim.count("close") == 0
    assert not sim.sessions["booting"]["browser_leaked"]


def test_a_lost_login_is_started_to_show_a_new_qr_for_a_person(sim):
    sim.add_session("a", "CLOSED", on_start="qr")
    revival = client(sim).revive(Channel("a", "CLOSED", "needs_person", WPPCONNECT_LOGIN_GONE))
    assert revival.outcome == "qr_issued" and sim.count("start") == 1


def test_a_wrong_key_is_refused_before_any_token_is_minted_with_it(sim):
    # Its words are checked with the other gateways' in test_interface.py.
    sim.add_session("a", "CONNECTED")
    with pytest.raises(HealthcheckError):
        client(sim, HEALTHCHECK_GATEWAY_KEY="wrong-key-000").list_sessions()
    assert sim.count("token") == 0
