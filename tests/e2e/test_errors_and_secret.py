"""Errors that say what to check, and a secret that never leaves (healthcheck issue, 9-11)."""

import pytest
from conftest import SECRET, free_port
from gateway_simulator import Fault, GatewaySimulator, html_fault, json_fault


def assert_clean(run):
    """One clear failure: no traceback, and no piece of the secret anywhere."""
    everything = run.everything()
    assert "Traceback" not in everything
    assert SECRET not in everything
    assert SECRET[:8] not in everything and SECRET[-8:] not in everything


@pytest.mark.parametrize("fault, code, says", [
    (json_fault(401, {"success": False, "error": "Unauthorized"}), 2,
     "the gateway refused the secret; check WPP_GATEWAY_SECRET"),
    (html_fault(401, headers={"WWW-Authenticate": 'Basic realm="x"'}), 2,
     "basic-auth challenge: something in front of /api"),
    (html_fault(404), 2, "is the port in WPP_GATEWAY_BASE_URL right (:8443)?"),
    (html_fault(502), 2, "HTTP 502 from the proxy"),
    (html_fault(504), 2, "HTTP 504 from the proxy"),
    (html_fault(500), 2, "HTTP 500 with an HTML page"),
    (json_fault(500, {"success": False, "error": "WPPConnect down"}), 2,
     "gateway error: WPPConnect down"),
    (Fault("response", 200, "<html><body>hello</body></html>", "text/html"), 3,
     "HTML page, not the gateway's JSON"),
    (Fault("response", 200, "{not json", "application/json"), 3, "not valid JSON"),
    (json_fault(200, {"success": True, "sessions": []}), 3, "holds no channel list"),
    (Fault("reset"), 2, "broke while the answer was being read"),
])
def test_list_failures_say_what_to_check(run_check, gateway, fault, code, says):
    gateway.set_fault("list", fault)
    run = run_check()
    assert run.code == code, run.stdout
    assert says in run.first_line
    assert says in run.log
    assert len(run.stdout.splitlines()) == 1
    assert_clean(run)


def test_connection_refused_names_the_host(run_check):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert run.code == 2
    assert "connection refused" in run.first_line and "127.0.0.1" in run.first_line
    assert_clean(run)


def test_name_that_does_not_resolve_names_the_host(run_check):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": "https://gateway.invalid:8443"})
    assert run.code == 2
    assert "does not resolve" in run.first_line or "unreachable" in run.first_line
    assert_clean(run)


def test_redirect_is_not_followed_and_the_other_host_never_sees_the_secret(run_check, gateway):
    other = GatewaySimulator(secret="x").start()
    try:
        gateway.set_fault("list", Fault("response", 302, "", "text/html",
                                         headers={"Location": other.url + "/api/channels"}))
        run = run_check()
    finally:
        other.stop()
    assert run.code == 2
    assert "HTTP 302 redirect to " + other.url in run.first_line
    assert other.requests == []
    assert_clean(run)


def test_base_url_that_is_not_http_is_refused(run_check, gateway):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": "ftp://127.0.0.1/"})
    assert run.code == 3
    assert "must be an http:// or https:// address" in run.first_line
    assert gateway.requests == []


def test_gateway_echoing_the_secret_does_not_leak_it(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(500, {"success": False,
                                             "error": f"bad secret {SECRET[:10]} given"}))
    run = run_check("--json")
    assert run.code == 2
    assert_clean(run)
    assert "***" in run.stdout


def test_secret_is_sent_as_header_with_json_accept(run_check, gateway):
    run_check()
    headers = gateway.calls("list")[0]["headers"]
    assert headers["X-Gateway-Secret"] == SECRET
    assert headers["Accept"] == "application/json"


def test_tls_verification_off_warns_every_run(run_check, gateway):
    run = run_check(env={"HEALTHCHECK_VERIFY_TLS": "false"})
    assert run.code == 0
    assert "TLS certificate checking is OFF" in run.stderr


def test_unwritable_log_folder_still_repairs_and_reports(run_check, gateway, not_a_folder):
    gateway.add_channel("imobsites", "disconnected")
    run = run_check(env={"HEALTHCHECK_LOG_FILE": str(not_a_folder / "hc.log")})
    assert run.code == 1  # the kick's WARNING outranks the log's UNKNOWN
    assert gateway.channels["imobsites"]["status"] == "connected"
    assert run.first_line.startswith("WHATSAPP SESSIONS WARNING - 1 of 2 channels not connected")
    assert "channel imobsites" in run.stdout
    assert "cannot write the log file" in run.stderr
    assert "Traceback" not in run.stderr


def test_cut_through_an_echoed_secret_leaves_no_fragment(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    # The quote is cut at 200 characters: here, 4 characters into the secret.
    gateway.set_fault("qr", json_fault(500, {"success": False, "error": "e" * 196 + SECRET}))
    run = run_check("--json")
    assert run.code == 2
    assert SECRET[:4] not in run.everything()


def test_status_echoing_the_secret_leaves_no_fragment_where_it_is_cut(run_check, gateway):
    # A status is quoted cut at 40 characters: here, 4 characters into the secret. The listing
    # is masked as it enters the run, so the cut falls in the mask, not in the secret.
    gateway.add_channel("imobsites", "e" * 36 + SECRET, "stay_down")
    for args in ((), ("--json",)):
        run = run_check(*args)
        assert run.code == 1, run.stdout
        assert SECRET[:4] not in run.everything()
        assert "***" in run.stdout
