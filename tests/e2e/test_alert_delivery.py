"""Alerts that reach a person as written (issue 14, items 5 to 7): line breaks kept, e-mail over
implicit TLS and STARTTLS against a real TLS server, and webhook text that each renderer shows as
plain text."""

import json
import socket
import sys

import pytest
from conftest import ROOT, SECRET, free_port, make_self_signed_certificate, write_env

sys.path.insert(0, str(ROOT))
from healthcheck.errors import HealthcheckError
from healthcheck.notify import webhook_kind
from healthcheck.settings import Settings, SmtpSettings, load_settings, setup_warnings

#: Outside text that tries to start a line of its own in the alert.
FORGING_ID = "evil\n- imobsites: reconnected, all fine"


def expected_qr_lines(items: list[dict], state: str = "CRITICAL") -> list[str]:
    """The alert's lines for channels that need a QR scan, one line per item, as a person reads it."""
    lines = [f"WhatsApp sessions {state} on {socket.gethostname()}:"]
    for item in items:
        name = item["id"].replace("\n", "?")
        lines.append(f"- {name}: a person must scan a new QR code in the panel now "
                     f"(since {item['since']}, 1 run, 1 kick)")
    return lines


def two_channels_need_a_scan(gateway) -> None:
    gateway.add_channel(FORGING_ID, "disconnected", "qr")
    gateway.add_channel("vendas", "disconnected", "qr")


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

    def __init__(self, **options):
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Message

        received = self.received = []

        class Keep(Message):
            def handle_message(self, message):
                received.append(message)

        self.port = free_port()
        self._controller = Controller(Keep(), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self):
        self._controller.stop()


@pytest.fixture
def smtp_server():
    """A factory of real SMTP servers on loopback, stopped after the test."""
    servers = []

    def start(**options) -> SmtpServer:
        servers.append(SmtpServer(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def mail_settings(server: SmtpServer, **extra: str) -> dict:
    settings = {"HEALTHCHECK_SMTP_HOST": "127.0.0.1", "HEALTHCHECK_SMTP_PORT": str(server.port),
                "HEALTHCHECK_SMTP_FROM": "watchdog@example.com",
                "HEALTHCHECK_SMTP_TO": "ops@example.com"}
    settings.update(extra)
    return settings


def body_lines(mail) -> list[str]:
    """The mail's lines as they crossed the wire: SMTP ends each one with CRLF."""
    return mail.get_payload(decode=True).decode("utf-8").rstrip("\r\n").split("\r\n")


# -- 5. line breaks ------------------------------------------------------------------------------

def test_webhook_alert_keeps_one_line_per_item(run_check, gateway, recorder):
    two_channels_need_a_scan(gateway)
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/services/T0/B0/x1"})
    assert run.code == 2, run.stdout
    [alert] = recorder.json_bodies()
    assert [i["id"] for i in alert["items"]] == ["evil?- imobsites: reconnected, all fine",
                                                 "vendas"]
    assert alert["text"].split("\n") == expected_qr_lines(alert["items"])


def test_email_alert_keeps_its_lines_and_the_subject_is_the_first(run_check, gateway,
                                                                   smtp_server):
    server = smtp_server()
    two_channels_need_a_scan(gateway)
    run = run_check(env=mail_settings(server, HEALTHCHECK_SMTP_STARTTLS="false"))
    assert run.code == 2, run.stdout
    [mail] = server.received
    assert "alert sent to email" in run.log
    lines = body_lines(mail)
    since = lines[1].rsplit("(since ", 1)[1].split(",")[0]
    items = [{"id": FORGING_ID, "since": since}, {"id": "vendas", "since": since}]
    assert lines == expected_qr_lines(items)
    assert mail["Subject"] == f"WhatsApp sessions CRITICAL on {socket.gethostname()}:"


def test_alert_command_gets_the_text_with_its_line_breaks(run_check, gateway, tmp_path):
    sink = tmp_path / "alert.json"
    script = tmp_path / "notify.py"
    script.write_text(f"import sys\nopen({str(sink)!r}, 'w').write(sys.stdin.read())\n")
    two_channels_need_a_scan(gateway)
    run = run_check(env={"HEALTHCHECK_ALERT_COMMAND": f"{sys.executable} {script}"})
    assert run.code == 2, run.stdout
    alert = json.loads(sink.read_text())
    assert alert["text"].split("\n") == expected_qr_lines(alert["items"])


# -- 6. e-mail over TLS --------------------------------------------------------------------------

@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1: (its file, a server-side TLS context)."""
    import ssl
    cert_file, key_file = make_self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return cert_file, context


def qr_alert_run(run_check, gateway, server, **settings):
    """A run whose QR is alerted at once by e-mail through `server`; it is CRITICAL whatever
    becomes of the delivery."""
    gateway.add_channel("vendas", "disconnected", "qr")
    run = run_check(env=mail_settings(server, **settings))
    assert run.code == 2, run.stdout
    return run


def failed_delivery(run) -> str:
    [line] = [line for line in run.log.splitlines() if "alert delivery to email failed" in line]
    return line


def test_email_over_implicit_tls_is_delivered_and_verified(run_check, gateway, smtp_server,
                                                           certificate):
    cert_file, context = certificate
    server = smtp_server(ssl_context=context)
    run = qr_alert_run(run_check, gateway, server, HEALTHCHECK_SMTP_TLS="ssl",
                       HEALTHCHECK_SMTP_CA_BUNDLE=str(cert_file))
    assert "alert sent to email" in run.log, run.log
    [mail] = server.received
    assert body_lines(mail)[1].startswith("- vendas: a person must scan a new QR code")


def test_email_over_starttls_is_delivered_and_verified(run_check, gateway, smtp_server,
                                                       certificate):
    cert_file, context = certificate
    server = smtp_server(tls_context=context, require_starttls=True)
    # No HEALTHCHECK_SMTP_TLS: STARTTLS is the default away from port 465.
    run = qr_alert_run(run_check, gateway, server, HEALTHCHECK_SMTP_CA_BUNDLE=str(cert_file))
    assert "alert sent to email" in run.log, run.log
    [mail] = server.received
    assert body_lines(mail)[1].startswith("- vendas: a person must scan a new QR code")


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_untrusted_smtp_certificate_is_one_line_naming_the_ca_setting(run_check, gateway,
                                                                      smtp_server, certificate,
                                                                      mode):
    _, context = certificate
    server = smtp_server(**({"ssl_context": context} if mode == "ssl" else
                            {"tls_context": context, "require_starttls": True}))
    run = qr_alert_run(run_check, gateway, server, HEALTHCHECK_SMTP_TLS=mode)
    assert server.received == []
    assert failed_delivery(run).endswith(f"alert delivery to email failed: SMTP 127.0.0.1:{server.port}: the "
                         f"server's certificate is not trusted (self-signed certificate): point "
                         f"HEALTHCHECK_SMTP_CA_BUNDLE at the CA that signed it; kept, tried "
                         f"again next run")
    assert "Traceback" not in run.stdout + run.stderr + run.log


def test_plain_smtp_against_implicit_tls_says_which_mode_to_set(run_check, gateway, smtp_server,
                                                                certificate):
    cert_file, context = certificate
    server = smtp_server(ssl_context=context)
    run = qr_alert_run(run_check, gateway, server, HEALTHCHECK_SMTP_TLS="starttls",
                       HEALTHCHECK_SMTP_CA_BUNDLE=str(cert_file), HEALTHCHECK_ALERT_TIMEOUT="1")
    assert "set HEALTHCHECK_SMTP_TLS=ssl" in failed_delivery(run)


def test_implicit_tls_against_a_plain_server_says_which_mode_to_set(run_check, gateway,
                                                                     smtp_server):
    run = qr_alert_run(run_check, gateway, smtp_server(), HEALTHCHECK_SMTP_TLS="ssl")
    assert "set HEALTHCHECK_SMTP_TLS=starttls" in failed_delivery(run)


def smtp_of(tmp_path, **values: str):
    env_file = tmp_path / "smtp.env"
    write_env(env_file, {"WPP_GATEWAY_BASE_URL": "https://gw.example.com",
                         "WPP_GATEWAY_SECRET": SECRET, "HEALTHCHECK_SMTP_HOST": "smtp.example.com",
                         "HEALTHCHECK_SMTP_TO": "ops@example.com", **values})
    return load_settings(env_file, environ={}).smtp


@pytest.mark.parametrize("values, tls, port", [
    ({}, "starttls", 587),
    ({"HEALTHCHECK_SMTP_PORT": "465"}, "ssl", 465),
    ({"HEALTHCHECK_SMTP_TLS": "ssl"}, "ssl", 465),
    ({"HEALTHCHECK_SMTP_TLS": "SSL", "HEALTHCHECK_SMTP_PORT": "2465"}, "ssl", 2465),
    ({"HEALTHCHECK_SMTP_TLS": "starttls", "HEALTHCHECK_SMTP_PORT": "465"}, "starttls", 465),
    ({"HEALTHCHECK_SMTP_TLS": "off"}, "off", 25),
    # The older setting, kept as an alias: true lets the port choose, false is off.
    ({"HEALTHCHECK_SMTP_STARTTLS": "true", "HEALTHCHECK_SMTP_PORT": "465"}, "ssl", 465),
    ({"HEALTHCHECK_SMTP_STARTTLS": "true"}, "starttls", 587),
    ({"HEALTHCHECK_SMTP_STARTTLS": "false"}, "off", 25),
])
def test_smtp_tls_mode_and_port_defaults(tmp_path, values, tls, port):
    smtp = smtp_of(tmp_path, **values)
    assert (smtp.tls, smtp.port) == (tls, port)


@pytest.mark.parametrize("values, message", [
    ({"HEALTHCHECK_SMTP_TLS": "tls"}, "HEALTHCHECK_SMTP_TLS must be starttls, ssl or off, got "
                                      "'tls'"),
    ({"HEALTHCHECK_SMTP_TLS": "ssl", "HEALTHCHECK_SMTP_STARTTLS": "true"},
     "HEALTHCHECK_SMTP_TLS and HEALTHCHECK_SMTP_STARTTLS are both set"),
    ({"HEALTHCHECK_SMTP_CA_BUNDLE": "/nonexistent/ca.pem"},
     "HEALTHCHECK_SMTP_CA_BUNDLE names /nonexistent/ca.pem, which is not a file"),
])
def test_bad_smtp_tls_settings_are_one_clear_error(tmp_path, values, message):
    with pytest.raises(HealthcheckError) as error:
        smtp_of(tmp_path, **values)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("tls, port, warned", [
    ("off", 25, True), ("off", 465, True), ("starttls", 587, False), ("ssl", 465, False),
    ("starttls", 465, False)])
def test_clear_text_warning_follows_the_tls_mode_not_the_port(tls, port, warned):
    smtp = SmtpSettings(host="smtp.example.com", port=port, user="u", password="pw-0123456",
                           sender="a@b", recipients=("c@d",), tls=tls)
    settings = Settings(base_url="https://gw.example.com", secret="x" * 10,
                           secrets_to_hide=(), smtp=smtp)
    expected = ["HEALTHCHECK_SMTP_TLS is off: the SMTP password crosses the network in clear; "
                "set HEALTHCHECK_SMTP_TLS=starttls (ssl on port 465)"] if warned else []
    assert setup_warnings(settings) == expected


# -- 7. webhook text that renders as plain text --------------------------------------------------

#: An id made of what Slack and Mattermost render: mentions, a disguised link, a channel link,
#: emphasis, code, a heading mark, a table bar and Slack's own announcement syntax.
MARKUP_ID = "@channel [Scan the QR](http://evil.example/qr) ~town *now* `x` # | <!here> &"


def markup_alert(run_check, gateway, recorder, path: str) -> dict:
    gateway.add_channel(MARKUP_ID, "disconnected", "qr")
    gateway.add_channel("1. vendas_sp", "disconnected", "qr")
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + path})
    assert run.code == 2, run.stdout
    [payload] = recorder.json_bodies()
    assert [i["id"] for i in payload["items"]] == [MARKUP_ID, "1. vendas_sp"]  # for tools, as is
    return payload


@pytest.mark.parametrize("path, first, second", [
    # Mattermost (and Rocket.Chat): Markdown escaped, mentions broken by a zero-width space.
    ("/hooks/xq5d1b3ktfy9mpw3bx4oc4pn7a",
     "@\u200bchannel \\[Scan the QR\\](http://evil.example/qr) \\~\u200btown \\*now\\* \\`x\\` "
     "\\# \\| &lt;!here&gt; &amp;", "1\\. vendas\\_sp"),
    # Slack: its own rule (&, <, >) and mrkdwn off, so *now*, `x` and ~town show as typed.
    ("/services/T000/B000/XXXXXXXX",
     "@channel [Scan the QR](http://evil.example/qr) ~town *now* `x` # | &lt;!here&gt; &amp;",
     "1. vendas_sp"),
])
def test_webhook_text_has_no_mention_link_or_markup_for_its_renderer(run_check, gateway,
                                                                      recorder, path, first,
                                                                      second):
    payload = markup_alert(run_check, gateway, recorder, path)
    since = payload["items"][0]["since"]
    scan = f"a person must scan a new QR code in the panel now (since {since}, 1 run, 1 kick)"
    assert payload["text"].split("\n") == [
        f"WhatsApp sessions CRITICAL on {socket.gethostname()}:", f"- {first}: {scan}",
        f"- {second}: {scan}"]
    if "/services/" in path:
        assert payload["mrkdwn"] is False
    else:
        assert set(payload) == {"text", "state", "host", "run_id", "sent_at", "items",
                                "more_items"}


@pytest.mark.parametrize("url, kind", [
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", "slack"),
    ("https://chat.example.com/hooks/xq5d1b3ktfy9mpw3bx4oc4pn7a", "markdown"),  # Mattermost
    ("https://rocket.example.com/hooks/64b1f/tok3n", "markdown"),  # Rocket.Chat
    ("https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t", "googlechat"),
    ("https://example.com/any/receiver", "markdown"),
])
def test_webhook_kind_is_read_from_its_url(url, kind):
    assert webhook_kind(url) == kind
