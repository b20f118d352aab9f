"""The wrapper's client (gateways/wrapper.py) in-process against the wrapper's simulator.

The client comes from the registry, as a run builds it, with Settings read from a plain dict;
its list_sessions and revive go over real HTTP to tests/support/gateway_simulator.py. What
comes back is checked as the model's Listing, Channel and Revival.
"""

import sys

import pytest
from conftest import ROOT, SECRET, gateway_client
from gateway_simulator import GatewaySimulator, json_fault

sys.path.insert(0, str(ROOT))
from healthcheck.constants import UNKNOWN
from healthcheck.errors import HealthcheckError
from healthcheck.model import Channel, Revival


def start_simulator():
    """One wrapper simulator for the whole module."""
    return GatewaySimulator(secret=SECRET).start()


def empty(simulator):
    simulator.channels.clear()
    simulator.list_shape, simulator.raw_list = "channels", None


def client(sim, **extra):
    return gateway_client({"WPP_GATEWAY_BASE_URL": sim.url, "WPP_GATEWAY_SECRET": SECRET, **extra})


def test_the_registry_builds_the_wrapper_client_from_the_default_settings(sim):
    gateway = client(sim)
    assert type(gateway).__name__ == "WrapperGateway"
    assert gateway.http.origin.url == sim.url


def test_connected_and_disconnected_channels_are_listed_with_their_condition(sim):
    sim.add_channel("pixel12digital", "connected").add_channel("imobsites", "disconnected")
    listing = client(sim).list_sessions()
    assert listing.channels == [Channel("pixel12digital", "connected", "connected"),
                                Channel("imobsites", "disconnected", "stopped")]
    assert listing.problems == []
    [call] = sim.calls("list")
    assert call["headers"]["X-Gateway-Secret"] == SECRET


def test_words_are_trimmed_and_lowered_and_starting_ones_are_transient(sim):
    sim.add_channel("a", " CONNECTED ").add_channel("b", "Initializing") \
        .add_channel("c", "qr_required")
    conditions = {c.id: (c.status, c.condition) for c in client(sim).list_sessions().channels}
    assert conditions == {"a": ("connected", "connected"), "b": ("initializing", "transient"),
                          "c": ("qr_required", "stopped")}


@pytest.mark.parametrize("shape", ["channels", "data", "bare"])
def test_every_list_shape_gives_the_same_listing(sim, shape):
    sim.add_channel("a", "connected")
    sim.list_shape = shape
    assert client(sim).list_sessions().channels == [Channel("a", "connected")]


def test_entries_without_an_id_are_problems_and_duplicates_are_listed_once(sim):
    sim.raw_list = {"success": True, "channels": [{"id": "a", "status": "connected"},
                                                  {"status": "connected"},
                                                  {"id": "a", "status": "disconnected"}]}
    listing = client(sim).list_sessions()
    assert listing.channels == [Channel("a", "connected")]
    [(state, text)] = listing.problems
    assert state == UNKNOWN and text.startswith("channel entry #2 has no usable id, skipped")


def test_a_disconnected_channel_is_revived_from_its_stored_login(sim):
    sim.add_channel("imobsites", "disconnected", "reconnect")
    gateway = client(sim)
    revival = gateway.revive(Channel("imobsites", "disconnected"))
    assert revival == Revival("reconnect_requested", "reconnect requested from the stored login")
    assert gateway.list_sessions().channels == [Channel("imobsites", "connected")]


def test_a_lost_login_comes_back_as_a_qr_for_a_person(sim):
    sim.add_channel("imobsites", "disconnected", "qr")
    revival = client(sim).revive(Channel("imobsites", "disconnected"))
    assert revival.outcome == "qr_issued" and "scan a new QR code" in revival.detail
    assert sim.channels["imobsites"]["status"] == "qr_required"


def test_a_client_that_is_not_running_is_relaunched_with_start_session(sim):
    sim.add_channel("imobsites", "disconnected", "not_started")
    revival = client(sim).revive(Channel("imobsites", "disconnected"))
    assert revival.outcome == "start_session_requested"
    assert [r["endpoint"] for r in sim.requests] == ["qr", "start"]


def test_answers_that_mean_connected_or_starting(sim):
    sim.add_channel("old", "disconnected", "connected_500").add_channel("up", "connected") \
        .add_channel("boot", "disconnected", "starting")
    gateway = client(sim)
    assert gateway.revive(Channel("old", "disconnected")).outcome == "already_connected"
    assert gateway.revive(Channel("up", "connected")).outcome == "already_connected"
    assert gateway.revive(Channel("boot", "disconnected")).outcome == "starting"


def test_an_id_with_a_slash_is_sent_as_one_path_segment(sim):
    sim.add_channel("a/b c", "disconnected")
    assert client(sim).revive(Channel("a/b c", "disconnected")).outcome == "reconnect_requested"
    [call] = sim.calls("qr")
    assert call["path"] == "/api/channels/a%2Fb%20c/qr" and call["channel"] == "a/b c"


def test_a_wrong_key_under_the_generic_names_names_the_generic_setting(sim):
    gateway = client(sim, WPP_GATEWAY_BASE_URL=None, WPP_GATEWAY_SECRET=None,
                     HEALTHCHECK_GATEWAY_URL=sim.url, HEALTHCHECK_GATEWAY_KEY="wrong-key")
    with pytest.raises(HealthcheckError, match="check HEALTHCHECK_GATEWAY_KEY$"):
        gateway.list_sessions()


def test_a_failed_revive_call_is_a_failed_revival_not_an_exception(sim):
    sim.add_channel("a", "disconnected")
    sim.set_fault("qr", json_fault(500, {"success": False, "error": "puppeteer crashed"}))
    revival = client(sim).revive(Channel("a", "disconnected"))
    assert revival == Revival("failed",
                              "reconnect call: HTTP 500, gateway error: puppeteer crashed")
