"""Alerts that reach a person as written (issue 14, items 5 to 7): line breaks kept, e-mail over
implicit TLS and STARTTLS against a real TLS server, and webhook text that each renderer shows as
plain text."""

import json
import socket
import sys

import pytest
from conftest import free_port, make_self_signed_certificate

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
