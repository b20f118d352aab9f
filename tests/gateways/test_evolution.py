"""Evolution API's client (gateways/evolution.py) in-process against the Evolution simulator.

The client comes from the registry with Settings read from a plain dict; its calls go over real
HTTP to tests/support/backend_simulators.py's EvolutionSimulator, whose database copy of an
instance's state lags the live one, as the real server's does. No call may log out or delete.
"""

import sys

import pytest
from backend_simulators import EvolutionSimulator
from conftest import BACKEND_KEY, ROOT, gateway_client, listed_channels, settings_for
from gateway_simulator import html_fault

sys.path.insert(0, str(ROOT))
from healthcheck.constants import CRITICAL
from healthcheck.errors import HealthcheckError
from healthcheck.gateways.evolution import EVOLUTION_NOT_LOADED, EVOLUTION_RESTART_ADVICE
from healthcheck.model import Channel, Revival


def start_simulator():
    """One Evolution API simulator for the whole module."""
    return EvolutionSimulator(secret=BACKEND_KEY).start()


def empty(simulator):
    simulator.instances.clear()
    simulator.license_required = False


def client(sim, **extra):
    return gateway_client({**settings_for("evolution", sim), **extra})


def test_the_live_state_of_each_instance_gives_its_condition(sim):
    sim.add_instance("open", "open").add_instance("close", "close") \
        .add_instance("reconnecting", "connecting", db="open") \
        .add_instance("qr", "connecting", db="connecting") \
        .add_instance("logged_out", "close", code=401) \
        .add_instance("unloaded", None, db="open")
    channels = listed_channels(client(sim))
    assert {name: (c.status, c.condition) for name, c in channels.items()} == {
        "open": ("open", "connected"), "close": ("close", "stopped"),
        "reconnecting": ("connecting", "transient"), "qr": ("connecting", "needs_person"),
        "logged_out": ("close", "needs_person"), "unloaded": (EVOLUTION_NOT_LOADED, "stopped")}
    assert channels["qr"].detail == "a QR code is waiting to be scanned"
    assert channels["logged_out"].detail.startswith("closed with code 401: Evolution wiped")
    # The database's copy lags: every instance's state is read live, with the key.
    assert sorted(c["channel"] for c in sim.calls("state")) == sorted(channels)
    assert {c["headers"]["apikey"] for c in sim.requests} == {BACKEND_KEY}


def test_a_closed_instance_is_connected_from_its_stored_login(sim):
    sim.add_instance("a", "close", on_connect="recover")
    gateway = client(sim)
    revival = gateway.revive(Channel("a", "close"))
    assert revival == Revival("reconnect_requested", "connect requested: Evolution reconnects "
                                                  "the instance from its stored login")
    assert [c["path"] for c in sim.calls("connect")] == ["/instance/connect/a"]
    assert gateway.list_sessions().channels == [Channel("a", "open", "connected")]


def test_a_connect_that_answers_a_qr_goes_to_a_person(sim):
    sim.add_instance("a", "close", on_connect="qr")
    revival = client(sim).revive(Channel("a", "close"))
    assert revival.outcome == "qr_issued" and "Evolution manager" in revival.detail


def test_a_connect_on_an_open_instance_is_already_connected(sim):
    sim.add_instance("a", "open")
    assert client(sim).revive(Channel("a", "close")).outcome == "already_connected"


def test_an_instance_this_process_never_loaded_needs_an_evolution_restart(sim):
    sim.add_instance("a", None, db="open")
    revival = client(sim).revive(Channel("a", EVOLUTION_NOT_LOADED))
    assert revival == Revival("restart_gateway", EVOLUTION_RESTART_ADVICE)


def test_a_connected_or_reconnecting_instance_is_restarted_not_connected(sim):
    sim.add_instance("silent", "open").add_instance("loop", "connecting", db="open")
    gateway = client(sim)
    assert gateway.revive(Channel("silent", "open", "connected"), restart=True).outcome \
        == "reconnect_requested"
    assert gateway.revive(Channel("loop", "connecting", "transient")).outcome \
        == "reconnect_requested"
    assert [c["channel"] for c in sim.calls("restart")] == ["silent", "loop"]
    assert sim.count("connect") == 0


def test_an_evolution_without_its_license_says_to_activate_it(sim):
    sim.add_instance("a", "open")
    sim.license_required = True
    with pytest.raises(HealthcheckError, match="HTTP 503 LICENSE_REQUIRED") as caught:
        client(sim).list_sessions()
    assert caught.value.state == CRITICAL


def test_every_state_read_failing_is_the_gateway_failing(sim):
    sim.add_instance("a", "open").add_instance("b", "close")
    sim.set_fault("state", html_fault(502))
    with pytest.raises(HealthcheckError) as caught:
        client(sim).list_sessions()
    assert str(caught.value).startswith("every status read failed (2 instances listed), so the "
                                        "gateway is failing; the first, a: reading its state: "
                                        "HTTP 502")


def test_one_state_read_failing_leaves_that_instance_unknown(sim):
    sim.add_instance("a", "open").add_instance("b", "close")
    sim.set_fault("state", html_fault(502, channel="b"))
    channels = listed_channels(client(sim))
    assert channels["a"].condition == "connected"
    assert (channels["b"].status, channels["b"].condition) == ("(unknown)", "unknown")
