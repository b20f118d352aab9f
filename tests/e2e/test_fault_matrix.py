"""The reliability and security matrix: each fault on the list call and on a kick (hostile issue).

Every row is published in the fault matrix of docs/security.md; `test_readme_publishes_the_matrix` keeps
the two in step. For each fault: the exit status, one line that says what to check, no traceback,
a log line, the other channels still handled, no piece of the secret anywhere, and a state file
that still parses.
"""

import json
import os
import sys

import pytest
from conftest import COMMAND_NAME, ROOT, SECRET, free_port, make_self_signed_certificate
from gateway_simulator import Fault, GatewaySimulator, html_fault, json_fault
from peak_memory import run_measured

BIG = 11 * 1024 * 1024
NOT_UTF8 = b'{"channels": [{"id": "caf\xe9", "status": "connected"}]}'


def redirect_fault(target: str) -> Fault:
    return Fault("response", 302, "", "text/html", headers={"Location": target + "/api/channels"})


#: Faults that can hit the list call and a kick alike: (fault, how, exit status, the log says).
HTTP_FAULTS = [
    ("connection refused", "refused", 2, "connection refused by"),
    ("connection reset halfway through the body", Fault("reset"), 2,
     "broke while the answer was being read"),
    ("accepts and never answers", Fault("hang"), 2, "no complete answer"),
    ("body trickles one byte a second", Fault("trickle", body=b"x" * 100, interval=1.0), 2,
     "no complete answer"),
    ("500 with an HTML body", html_fault(500), 2, "HTTP 500 with an HTML page"),
    ("502 with an HTML body", html_fault(502), 2, "HTTP 502 from the proxy"),
    ("504 with an HTML body", html_fault(504), 2, "HTTP 504 from the proxy"),
    ("401 from the app (JSON)", json_fault(401, {"success": False, "error": "Unauthorized"}), 2,
     "the gateway refused the secret"),
    ("401 with WWW-Authenticate: Basic",
     html_fault(401, headers={"WWW-Authenticate": 'Basic realm="api"'}), 2,
     "basic-auth challenge"),
    ("404 with an HTML body", html_fault(404), 2, "is the port in WPP_GATEWAY_BASE_URL right"),
    ("302 to another host", redirect_fault, 2, "redirect to"),
]

LIST_FAULTS = HTTP_FAULTS + [
    ("name that does not resolve", "dns", 2, "does not resolve"),
    ("invalid JSON", Fault("response", 200, '{"channels": [', "application/json"), 3,
     "not valid JSON"),
    ("channels not a list", json_fault(200, {"success": True, "channels": "a,b"}), 3,
     "holds no channel list"),
    ("an id that is a number", json_fault(200, {"channels": [{"id": 5, "status": "x"}]}), 3,
     "has no usable id"),
    ("an id that is null", json_fault(200, {"channels": [{"id": None, "status": "x"}]}), 3,
     "has no usable id"),
    ("an id that is empty", json_fault(200, {"channels": [{"id": "", "status": "x"}]}), 3,
     "has no usable id"),
    ("a duplicated id", json_fault(200, {"channels": [{"id": "a", "status": "disconnected"},
                                                      {"id": "a", "status": "disconnected"}]}),
     1, "channel a: status disconnected, reconnect_requested"),
    ("a status that is missing", json_fault(200, {"channels": [{"id": "a"}]}), 1,
     "channel a: status (none), reconnect_requested"),
    ("a status that is null", json_fault(200, {"channels": [{"id": "a", "status": None}]}), 1,
     "channel a: status (none), reconnect_requested"),
    ("a status that is a number", json_fault(200, {"channels": [{"id": "a", "status": 3}]}), 1,
     "channel a: status (none), reconnect_requested"),
    ("body over 10 MB, length declared", Fault("big", size=BIG), 3, "over 10 MB"),
    ("body over 10 MB, no length", Fault("big", size=BIG, headers={"declare_length": "no"}), 3,
     "over 10 MB"),
    ("body that is not UTF-8", Fault("response", 200, NOT_UTF8, "application/json"), 3,
     "not valid JSON"),
    ("TLS, self-signed certificate", "tls", 2, "TLS failure"),
    ("TLS, self-signed, HEALTHCHECK_CA_BUNDLE set", "tls+ca", 0, ""),
]

KICK_FAULTS = HTTP_FAULTS + [
    ("invalid JSON", Fault("response", 200, '{"success": tr', "application/json"), 2,
     "without a JSON object"),
    ("JSON of the wrong types", json_fault(200, ["qr", 5]), 2, "without a JSON object"),
    ("body over 10 MB, length declared", Fault("big", size=BIG), 2, "over 10 MB"),
    ("body that is not UTF-8", Fault("response", 200, b"\xff\xfe{", "application/json"), 2,
     "without a JSON object"),
]


@pytest.fixture
def other_host():
    """A second server: a redirect points at it, and it must never see the secret."""
    server = GatewaySimulator(secret="other").start()
    yield server
    server.stop()


def arrange(kind, where, gateway, other_host, tmp_path, channel=None):
    """Install the fault; return settings the run needs for it."""
    if kind == "refused":
        if where == "list":
            return {"WPP_GATEWAY_BASE_URL": f"http://127.0.0.1:{free_port()}"}
        gateway.set_fault("list", Fault("stop_listening"))
        return {}
    if kind == "dns":
        return {"WPP_GATEWAY_BASE_URL": "https://gateway.invalid:8443"}
    if kind in ("tls", "tls+ca"):
        cert, key = make_self_signed_certificate(tmp_path)
        tls = GatewaySimulator(secret=SECRET, tls=(str(cert), str(key)))
        tls.add_channel("pixel12digital", "connected").start()
        gateway.tls = tls  # stopped by the test
        env = {"WPP_GATEWAY_BASE_URL": tls.url}
        if kind == "tls+ca":
            env["HEALTHCHECK_CA_BUNDLE"] = str(cert)
        return env
    fault = kind(other_host.url) if callable(kind) else kind
    fault.channel = channel
    gateway.set_fault("list" if where == "list" else "qr", fault)
    return {}


def assert_contained(run, code, says):
    everything = run.everything()
    assert run.code == code, run.stdout + run.stderr
    assert "Traceback" not in everything
    assert SECRET not in everything and SECRET[:8] not in everything
    assert SECRET[-8:] not in everything
    if code:
        assert says in run.stdout and says in run.log
    state = run.home / "logs" / "healthcheck-state.json"
    if state.exists():
        assert isinstance(json.loads(state.read_text()), dict)


@pytest.mark.parametrize("name, kind, code, says", LIST_FAULTS, ids=[r[0] for r in LIST_FAULTS])
def test_fault_on_the_list_call(run_check, gateway, other_host, tmp_path, name, kind, code,
                                says):
    gateway.add_channel("a", "disconnected")
    env = arrange(kind, "list", gateway, other_host, tmp_path)
    env.update(HEALTHCHECK_LIST_TIMEOUT="2")
    try:
        run = run_check(env=env, timeout=60)
    finally:
        if getattr(gateway, "tls", None):
            gateway.tls.stop()
    assert_contained(run, code, says)
    if code in (2, 3) and "refused" not in name and "resolve" not in name:
        assert run.first_line.startswith(f"WHATSAPP SESSIONS {['', '', 'CRITICAL', 'UNKNOWN'][code]}")
    assert other_host.requests == []


@pytest.mark.parametrize("name, kind, code, says", KICK_FAULTS, ids=[r[0] for r in KICK_FAULTS])
def test_fault_on_a_kick(run_check, gateway, other_host, tmp_path, name, kind, code, says):
    for channel in ("a", "b", "c"):
        gateway.add_channel(channel, "disconnected")
    env = arrange(kind, "kick", gateway, other_host, tmp_path, channel="b")
    env.update(HEALTHCHECK_QR_TIMEOUT="2")
    run = run_check(env=env, timeout=60)
    assert_contained(run, code, says)
    line_b = [line for line in run.stdout.splitlines() if line.startswith("channel b:")]
    assert line_b and "failed" in line_b[0] and says in line_b[0]
    if kind != "refused":  # the others still reconnect
        assert gateway.channels["a"]["status"] == "connected"
        assert gateway.channels["c"]["status"] == "connected"
    else:  # the whole gateway refuses: every channel is tried and reported
        assert run.stdout.count("failed: gateway unreachable: connection refused") == 3
    assert other_host.requests == []


def test_readme_publishes_the_matrix():
    readme = (ROOT / "docs" / "security.md").read_text()
    for where, rows in (("list", LIST_FAULTS), ("kick", KICK_FAULTS)):
        for name, _, code, says in rows:
            row = [line for line in readme.splitlines()
                   if line.startswith(f"| {name} | {where} |")]
            assert row, f"README matrix has no row for {name} on the {where}"
            assert f"| {code} |" in row[0], row[0]
            assert says in row[0], row[0]


def test_huge_body_keeps_memory_bounded(gateway, home, tmp_path):
    from conftest import write_env
    gateway.set_fault("list", Fault("big", size=300 * 1024 * 1024,
                                    headers={"declare_length": "no"}))
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                              "HEALTHCHECK_LIST_TIMEOUT": "30"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WPP_", "HEALTHCHECK_"))}
    code, peak_kib, _, stdout, _ = run_measured([sys.executable, str(home / COMMAND_NAME)],
                                             cwd=tmp_path, env=env, capture_output=True,
                                             text=True)
    assert code == 3
    assert "over 10 MB" in stdout
    assert peak_kib < 120 * 1024  # the body is 300 MB; the script reads 10 MB of it at most
