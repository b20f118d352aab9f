"""healthcheck/settings.py in-process: Settings read from a plain mapping, and their checks.

`settings_from` (conftest) reads a dict the way `--env-file /dev/null` reads the environment:
no file, the same checks as a run. Each bad value must be one HealthcheckError that names its
setting; the end-to-end side (the .env file, the exit status) is in
tests/e2e/test_settings_sources_and_errors.py.
"""

import sys

import pytest
from conftest import ROOT, SECRET, settings_from

sys.path.insert(0, str(ROOT))
from healthcheck.constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LIST_TIMEOUT,
    DEFAULT_WORKERS,
    SCRIPT_DIR,
    UNKNOWN,
)
from healthcheck.errors import HealthcheckError
from healthcheck.settings import is_panel_ciphertext, setup_warnings

WRAPPER = {"WPP_GATEWAY_BASE_URL": "https://gw.example:8443/", "WPP_GATEWAY_SECRET": SECRET}
WAHA = {"HEALTHCHECK_GATEWAY": "waha", "HEALTHCHECK_GATEWAY_URL": "http://127.0.0.1:3000",
        "HEALTHCHECK_GATEWAY_KEY": "waha-key-0123456789"}


def refused(values: dict) -> str:
    """The one error `values` make; its state is UNKNOWN (a configuration error)."""
    with pytest.raises(HealthcheckError) as caught:
        settings_from(values)
    assert caught.value.state == UNKNOWN
    return str(caught.value)


def test_the_wrapper_needs_only_its_address_and_secret():
    settings = settings_from(WRAPPER)
    assert settings.gateway == "wrapper"
    assert settings.base_url == "https://gw.example:8443"  # the trailing slash is dropped
    assert (settings.url_setting, settings.key_setting) == ("WPP_GATEWAY_BASE_URL",
                                                            "WPP_GATEWAY_SECRET")
    assert settings.secret == SECRET and SECRET in settings.secrets_to_hide
    assert (settings.connect_timeout, settings.list_timeout, settings.workers) == \
        (DEFAULT_CONNECT_TIMEOUT, DEFAULT_LIST_TIMEOUT, DEFAULT_WORKERS)
    assert settings.alert_destinations == [] and settings.activity is None


def test_the_wrapper_takes_the_generic_names_when_they_are_set():
    settings = settings_from({**WRAPPER, "HEALTHCHECK_GATEWAY_URL": "https://other:1",
                              "HEALTHCHECK_GATEWAY_KEY": "other-key"})
    assert (settings.base_url, settings.secret) == ("https://other:1", "other-key")
    assert (settings.url_setting, settings.key_setting) == ("HEALTHCHECK_GATEWAY_URL",
                                                            "HEALTHCHECK_GATEWAY_KEY")


def test_another_gateway_is_named_in_any_case_and_read_from_the_generic_names():
    settings = settings_from({**WAHA, "HEALTHCHECK_GATEWAY": "WAHA"})
    assert (settings.gateway, settings.url_setting) == ("waha", "HEALTHCHECK_GATEWAY_URL")
    assert "HEALTHCHECK_GATEWAY_URL is missing: the settings file /dev/null is the null " \
           "device" in refused({"HEALTHCHECK_GATEWAY": "waha"})
    assert refused({"HEALTHCHECK_GATEWAY": "nope"}).startswith(
        "HEALTHCHECK_GATEWAY must be one of wrapper, waha, evolution, wppconnect, got 'nope'")


@pytest.mark.parametrize("url, says", [
    ("https://gw/api/", "WPP_GATEWAY_BASE_URL ends in /api"),
    ("ftp://gw", "WPP_GATEWAY_BASE_URL must be an http:// or https:// address with a host"),
    ("https://", "WPP_GATEWAY_BASE_URL must be an http:// or https:// address with a host"),
    ("https://gw:port", "WPP_GATEWAY_BASE_URL has a port that is not a number"),
])
def test_a_bad_gateway_address_is_named(url, says):
    assert refused({**WRAPPER, "WPP_GATEWAY_BASE_URL": url}).startswith(says)


def test_a_key_that_cannot_go_in_a_header_is_refused_by_its_name():
    for bad in ("sécret-key", "key\x01x"):
        assert refused({**WAHA, "HEALTHCHECK_GATEWAY_KEY": bad}).startswith(
            "HEALTHCHECK_GATEWAY_KEY holds characters that cannot be sent in an HTTP header"), bad
    assert refused({**WAHA, "HEALTHCHECK_GATEWAY_KEY": "  "}).startswith(
        "HEALTHCHECK_GATEWAY_KEY is missing")  # blank is missing


@pytest.mark.parametrize("name, value, says", [
    ("HEALTHCHECK_CONNECT_TIMEOUT", "0", "must be a number of seconds above 0, got '0'"),
    ("HEALTHCHECK_QR_TIMEOUT", "soon", "must be a number of seconds above 0, got 'soon'"),
    ("HEALTHCHECK_DEADLINE", "nan", "must be a number of seconds above 0, got 'nan'"),
    ("HEALTHCHECK_VERIFY_SECONDS", "-1", "must be a number of seconds from 0, got '-1'"),
    ("HEALTHCHECK_DEADLINE", "86400",
     "must be a number of seconds above 0, got '86400' (it must stay below 86400)"),
    ("HEALTHCHECK_WORKERS", "65", "must be a whole number from 1 to 64, got '65'"),
    ("HEALTHCHECK_ALERT_AFTER", "1.5", "must be a whole number from 1 to 1000, got '1.5'"),
    ("HEALTHCHECK_VERIFY_TLS", "maybe", "must be true or false, got 'maybe'"),
    ("HEALTHCHECK_SILENT_ACTION", "reboot", "must be alert or restart, got 'reboot'"),
    ("HEALTHCHECK_ALERT_WEBHOOK_URL", "hooks.example/x", "must be an http:// or https://"),
])
def test_a_bad_value_is_one_line_naming_the_setting_and_where_to_set_it(name, value, says):
    message = refused({**WRAPPER, name: value})
    assert message.startswith(f"{name} {says}")
    assert message.endswith(f"set {name} in /dev/null or in the environment")


def test_numbers_flags_and_blanks_are_read_as_a_person_writes_them():
    settings = settings_from({**WRAPPER, "HEALTHCHECK_VERIFY_SECONDS": "0",
                              "HEALTHCHECK_VERIFY_TLS": "No", "HEALTHCHECK_WORKERS": "8",
                              "HEALTHCHECK_LIST_TIMEOUT": "   ",
                              "HEALTHCHECK_QR_TIMEOUT": " 2.5 "})
    assert settings.verify_seconds == 0.0 and settings.verify_tls is False
    assert settings.workers == 8 and settings.qr_timeout == 2.5
    assert settings.list_timeout == DEFAULT_LIST_TIMEOUT  # blank: the default


def test_channel_lists_are_read_as_channel_keys():
    settings = settings_from({**WRAPPER, "HEALTHCHECK_EXPECTED_CHANNELS": " Imob Sites ,, x",
                              "HEALTHCHECK_IGNORE_CHANNELS": "Test*"})
    assert settings.expected_channels == ("imobsites", "x")
    assert settings.ignore_channels == ("test*",)


def test_relative_paths_are_beside_the_command_and_the_lock_and_state_beside_the_log():
    settings = settings_from({**WRAPPER, "HEALTHCHECK_LOG_FILE": "var/hc.log"})
    assert settings.log_file == SCRIPT_DIR / "var" / "hc.log"
    assert settings.lock_file == SCRIPT_DIR / "var" / "hc.lock"
    assert settings.state_path == SCRIPT_DIR / "var" / "healthcheck-state.json"
    moved = settings_from({**WRAPPER, "HEALTHCHECK_STATE_FILE": "/srv/state.json"})
    assert str(moved.state_path) == "/srv/state.json"


def test_token_urls_and_every_password_are_kept_to_be_hidden():
    settings = settings_from({
        **WRAPPER, "HEALTHCHECK_ALERT_WEBHOOK_URL": "https://hooks.example/services/T0K3N1234",
        "HEALTHCHECK_PING_URL": "https://hc-ping.com/abc",
        "HEALTHCHECK_SMTP_HOST": "smtp.example", "HEALTHCHECK_SMTP_TO": "a@x, b@y",
        "HEALTHCHECK_SMTP_PASSWORD": "mailpass99",
        "HEALTHCHECK_ACTIVITY_DB": "postgresql+psycopg://u:p%40ss@db/x",
        "HEALTHCHECK_ACTIVITY_QUERY": "SELECT 1"})
    assert settings.urls_to_hide == ("https://hooks.example/services/T0K3N1234",
                                     "https://hc-ping.com/abc", "services/T0K3N1234")
    assert {"mailpass99", "p%40ss", "p@ss"} <= set(settings.secrets_to_hide)
    assert settings.alert_destinations == ["webhook", "email"]
    assert "mailpass99" not in settings.redact("login mailpass99 refused")


def test_smtp_tls_follows_its_setting_the_older_alias_or_the_port():
    smtp = {**WRAPPER, "HEALTHCHECK_SMTP_HOST": "h", "HEALTHCHECK_SMTP_TO": "a@x"}
    assert (settings_from(smtp).smtp.tls, settings_from(smtp).smtp.port) == ("starttls", 587)
    assert settings_from({**smtp, "HEALTHCHECK_SMTP_PORT": "465"}).smtp.tls == "ssl"
    off = settings_from({**smtp, "HEALTHCHECK_SMTP_STARTTLS": "false"}).smtp
    assert (off.tls, off.port) == ("off", 25)
    assert refused({**smtp, "HEALTHCHECK_SMTP_STARTTLS": "false",
                    "HEALTHCHECK_SMTP_TLS": "ssl"}).startswith(
        "HEALTHCHECK_SMTP_TLS and HEALTHCHECK_SMTP_STARTTLS are both set")
    assert refused({**WRAPPER, "HEALTHCHECK_SMTP_HOST": "h"}).startswith(
        "HEALTHCHECK_SMTP_TO is missing")


def test_activity_settings_and_per_channel_ceilings():
    activity = {**WRAPPER, "HEALTHCHECK_ACTIVITY_DB": "sqlite:///x.db",
                "HEALTHCHECK_ACTIVITY_QUERY": "SELECT channel, at FROM t WHERE at > :since"}
    read = settings_from({**activity, "HEALTHCHECK_SILENT_HOURS_BY_CHANNEL":
                          "Imob Sites=168, orsegups=off"}).activity
    assert read.ceiling_hours("imob sites") == 168.0
    assert read.ceiling_hours("Orsegups") is None  # off
    assert read.ceiling_hours("other") == 72.0
    assert refused({**activity, "HEALTHCHECK_SILENT_HOURS_BY_CHANNEL": "imob=soon"}).startswith(
        "HEALTHCHECK_SILENT_HOURS_BY_CHANNEL must be channel=hours or channel=off pairs")
    assert refused({**activity, "HEALTHCHECK_ACTIVITY_TZ": "Mars/Base"}).startswith(
        "HEALTHCHECK_ACTIVITY_TZ must be a time zone name")
    assert refused({**WRAPPER, "HEALTHCHECK_ACTIVITY_DB": "sqlite:///x.db"}).startswith(
        "HEALTHCHECK_ACTIVITY_QUERY is missing")
    assert refused({**WRAPPER, "HEALTHCHECK_ACTIVITY_DB": "not a url"}).startswith(
        "HEALTHCHECK_ACTIVITY_DB must be a database URL")


def test_setup_warnings_name_what_is_unsafe_in_this_configuration():
    assert setup_warnings(settings_from(WAHA)) == []  # http:// to loopback is fine
    remote = settings_from({**WAHA, "HEALTHCHECK_GATEWAY_URL": "http://10.0.0.5:3000",
                            "HEALTHCHECK_VERIFY_TLS": "false"})
    warnings = setup_warnings(remote)
    assert warnings[0].startswith("TLS certificate checking is OFF")
    assert warnings[1].startswith("HEALTHCHECK_GATEWAY_URL is http://: the gateway secret "
                                  "crosses the network in clear")


def test_the_settings_know_which_names_hold_the_address_and_the_key():
    # Messages name these (through the answers' Origin), never a hard-coded WPP_* name.
    waha, wrapper = settings_from(WAHA), settings_from(WRAPPER)
    assert (waha.url_setting, waha.key_setting) == ("HEALTHCHECK_GATEWAY_URL",
                                                    "HEALTHCHECK_GATEWAY_KEY")
    assert (wrapper.url_setting, wrapper.key_setting) == ("WPP_GATEWAY_BASE_URL",
                                                          "WPP_GATEWAY_SECRET")


def test_a_panel_secret_of_32_hex_characters_is_plain_even_with_a_key():
    assert is_panel_ciphertext("0123456789abcdef" * 2, "infra-key") is None
    assert is_panel_ciphertext("c2hvcnQ=", "infra-key") is None  # too short for IV + block
    assert is_panel_ciphertext("A" * 64, "infra-key") is None  # hex, however long
    assert is_panel_ciphertext("Zz" * 32, None) is None  # no INFRA_SECRET_KEY: never encrypted
    assert len(is_panel_ciphertext("Zz" * 32, "infra-key")) == 48
