"""What every gateway client owes the run, checked on all four against their simulators.

The per-gateway files check each gateway's own words and quirks; this one checks the declared
interface (gateways/base.py) the same way for every client: the class, its abilities, a wrong
key, and a revive that comes to "a person must scan a QR".
"""

import sys
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import pytest
from conftest import BACKEND_KEY, ROOT, SECRET, gateway_client, settings_for
from gateway_simulator import GatewaySimulator

sys.path.insert(0, str(ROOT))
from healthcheck.constants import CRITICAL, GATEWAY_TYPES
from healthcheck.errors import HealthcheckError
from healthcheck.gateways import CLIENTS, GATEWAYS
from healthcheck.gateways.base import Abilities, Gateway
from healthcheck.model import Channel


@dataclass
class Kind:
    """One gateway, as these tests drive it."""

    settings: Callable  # (simulator, **extra) -> the settings mapping
    wrong_key: dict
    #: Adds session "a", stopped, whose revive shows a QR; returns it as a listing gives it.
    lost_login: Callable
    #: How the wrong key's listing error begins: the gateway's own words and its own setting.
    refused: str
    #: What the lost login's revive answers, then its status and condition in the next read.
    revived: tuple


def wrapper_settings(sim, **extra):
    return {"WPP_GATEWAY_BASE_URL": sim.url, "WPP_GATEWAY_SECRET": SECRET, **extra}


KINDS = {
    "wrapper": Kind(
        wrapper_settings, {"WPP_GATEWAY_SECRET": "not-the-secret"},
        lambda sim: (sim.add_channel("a", "disconnected", "qr"), Channel("a", "disconnected"))[1],
        "listing channels: HTTP 401, the gateway refused the secret; check WPP_GATEWAY_SECRET "
        "(and INFRA_SECRET_KEY if the secret is stored encrypted)",
        ("qr_issued", "qr_required", "stopped")),
    "waha": Kind(
        lambda sim, **extra: settings_for("waha", sim, **extra),
        {"HEALTHCHECK_GATEWAY_KEY": "wrong-key-000"},
        lambda sim: (sim.add_session("a", "FAILED", on_restart="qr"), Channel("a", "FAILED"))[1],
        "listing sessions: HTTP 401, WAHA refused the key; check HEALTHCHECK_GATEWAY_KEY "
        "(WAHA's WAHA_API_KEY",
        ("reconnect_requested", "SCAN_QR_CODE", "needs_person")),
    "evolution": Kind(
        lambda sim, **extra: settings_for("evolution", sim, **extra),
        {"HEALTHCHECK_GATEWAY_KEY": "wrong-key-000"},
        lambda sim: (sim.add_instance("a", "close", on_connect="qr"), Channel("a", "close"))[1],
        "listing instances: HTTP 401, Evolution API refused the key; check "
        "HEALTHCHECK_GATEWAY_KEY (its global AUTHENTICATION_API_KEY",
        ("qr_issued", "connecting", "needs_person")),
    "wppconnect": Kind(
        lambda sim, **extra: settings_for("wppconnect", sim, **extra),
        {"HEALTHCHECK_GATEWAY_KEY": "wrong-key-000"},
        lambda sim: (sim.add_session("a", "CLOSED", on_start="qr"), Channel("a", "CLOSED"))[1],
        "listing sessions: HTTP 400, the server refused the key (SECRET_KEY); check "
        "HEALTHCHECK_GATEWAY_KEY",
        ("start_session_requested", "QRCODE", "needs_person")),
}


@pytest.fixture(params=sorted(KINDS))
def gateway(request, backends):
    """(kind, its simulator, how to drive it), once per gateway."""
    kind = request.param
    if kind == "wrapper":
        sim = GatewaySimulator(secret=SECRET).start()
        request.addfinalizer(sim.stop)
    else:
        sim = backends(kind, **({"start_seconds": 0.0} if kind == "wppconnect" else {}))
    return kind, sim, KINDS[kind]


def test_every_client_is_a_gateway_that_declares_what_it_can_do():
    assert set(GATEWAYS) == set(KINDS)
    for kind, client in GATEWAYS.items():
        assert issubclass(client, Gateway), kind
        assert isinstance(client.abilities, Abilities), kind
        assert urlsplit(GATEWAY_TYPES[kind]).port and client.KEY_REFUSED.strip(), kind


def test_the_registry_gives_each_configured_gateway_its_client(gateway):
    kind, sim, drive = gateway
    client = gateway_client(drive.settings(sim))
    assert type(client).__name__ == CLIENTS[kind][1] and client.http.origin.url == sim.url


def test_a_wrong_key_fails_the_listing_critical_in_the_gateways_words(gateway):
    _, sim, drive = gateway
    drive.lost_login(sim)
    with pytest.raises(HealthcheckError) as caught:
        gateway_client(drive.settings(sim, **drive.wrong_key)).list_sessions()
    assert caught.value.state == CRITICAL
    assert str(caught.value).startswith(drive.refused)
    assert BACKEND_KEY not in str(caught.value) and SECRET not in str(caught.value)


def test_a_revive_that_needs_a_person_says_so_now_or_in_the_next_read(gateway):
    # The wrapper's /qr and Evolution's connect answer the QR at once; WAHA's restart and
    # WPPConnect's start-session answer first and show the QR in the next read (after_revive).
    _, sim, drive = gateway
    channel = drive.lost_login(sim)
    client = gateway_client(drive.settings(sim))
    revival = client.revive(channel)
    [after] = client.list_sessions().channels
    assert (revival.outcome, after.status, after.condition) == drive.revived, revival.detail
