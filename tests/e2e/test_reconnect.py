"""The reconnect kick and what each answer means (healthcheck issue, 4)."""

import pytest
from gateway_simulator import Fault, html_fault, json_fault


def test_disconnected_channel_is_kicked_and_the_run_warns(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    run = run_check()
    assert run.code == 1, run.stdout
    assert run.first_line == ("WHATSAPP SESSIONS WARNING - 1 of 2 channels not connected: "
                              "imobsites (reconnect_requested)")
    assert [(c["method"], c["path"]) for c in gateway.calls("qr")] == [
        ("GET", "/api/channels/imobsites/qr")]
    assert gateway.channels["imobsites"]["status"] == "connected"


def test_channel_id_is_percent_encoded_as_one_path_segment(run_check, gateway):
    gateway.add_channel("a/b c", "disconnected")
    run = run_check()
    assert run.code == 1, run.stdout
    assert gateway.calls("qr")[0]["path"] == "/api/channels/a%2Fb%20c/qr"


@pytest.mark.parametrize("on_kick, outcome, code", [
    ("reconnect", "reconnect_requested", 1),
    ("qr", "qr_issued", 2),
    ("connected", "already_connected", 1),
    ("connected_500", "already_connected", 1),
    ("starting", "starting", 1),
    ("not_started", "start_session_requested", 1),
    ("stay_down", "reconnect_requested", 1),
])
def test_each_qr_answer_gets_its_outcome(run_check, gateway, on_kick, outcome, code):
    gateway.add_channel("imobsites", "disconnected", on_kick)
    run = run_check("--json")
    import json
    report = json.loads(run.stdout)
    assert run.code == code
    channel = next(c for c in report["channels"] if c["id"] == "imobsites")
    assert channel["outcome"] == outcome
    assert channel["connected"] is False


@pytest.mark.parametrize("field", ["qr_base64", "qrcode", "base64Qrimg", "base64",
                                   "base64Image", "image", "qrcode_base64"])
def test_qr_in_any_known_field_is_a_qr_issued(run_check, gateway, field):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(200, {"success": True, "data": {field: "iVBORw0K"}}))
    run = run_check()
    assert run.code == 2
    assert "qr_issued" in run.first_line and "a person must scan" in run.stdout


def test_not_started_session_gets_one_start_session_call(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected", "not_started")
    run = run_check()
    assert run.code == 1, run.stdout
    assert [c["path"] for c in gateway.calls("start")] == [
        "/api/channels/imobsites/start-session"]
    assert gateway.calls("start")[0]["method"] == "POST"


def test_gateway_without_start_session_route_says_so(run_check, gateway):
    gateway.start_session_route = False
    gateway.add_channel("imobsites", "disconnected", "not_started")
    run = run_check()
    assert run.code == 2
    assert "no start-session route (HTTP 404)" in run.stdout
    assert len(gateway.calls("start")) == 1


def test_unknown_channel_on_kick_fails_critical(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(404, {"success": False, "error": "Canal não encontrado"}))
    run = run_check()
    assert run.code == 2
    assert "Canal não encontrado" in run.stdout


def test_kick_is_never_retried(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", html_fault(502))
    run = run_check()
    assert run.code == 2
    assert len(gateway.calls("qr")) == 1
    assert "failed" in run.first_line


def test_one_failed_kick_does_not_stop_the_others(run_check, gateway):
    for name in ("a", "b", "c"):
        gateway.add_channel(name, "disconnected")
    gateway.set_fault("qr", Fault("hang", channel="b"))
    run = run_check(env={"HEALTHCHECK_QR_TIMEOUT": "1"})
    assert run.code == 2, run.stdout
    assert sorted(c["channel"] for c in gateway.calls("qr")) == ["a", "b", "c"]
    assert gateway.channels["a"]["status"] == "connected"
    assert gateway.channels["c"]["status"] == "connected"
    assert "channel b: status disconnected, failed: no complete answer" in run.stdout


def test_never_deletes_or_recreates_a_channel(run_check, gateway):
    for name, kick in (("a", "qr"), ("b", "not_started"), ("c", "reconnect")):
        gateway.add_channel(name, "disconnected", kick)
    run_check()
    assert {(r["method"], r["endpoint"]) for r in gateway.requests} <= {
        ("GET", "list"), ("GET", "qr"), ("POST", "start")}
