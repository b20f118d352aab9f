"""The pure decision steps, fed plain data: no gateway, no clock, no files."""

import json
import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(ROOT))
from healthcheck.constants import CRITICAL, GATEWAY_KEY, MAX_QUOTE_CHARS, OK, WARNING
from healthcheck.files import _split_watchdog_incidents
from healthcheck.gateways.http import Answer, channel_path
from healthcheck.gateways.wrapper import classify_qr_answer
from healthcheck.incidents import AlertPolicy, compose_alert, plan_incidents
from healthcheck.model import ChannelReport
from healthcheck.report import Report, worst_state
from healthcheck.text import Redactor, channel_key, quote_untrusted

NOW = datetime(2026, 2, 9, 14, 30, tzinfo=timezone(timedelta(hours=-3)))
POLICY = AlertPolicy(alert_after=2, repeat_hours=6)


def answer(status=200, body=b"{}", content_type="application/json", **kw):
    return Answer(status, content_type, kw.get("www", ""), kw.get("location", ""), body)


def report_with(*channels, **kw):
    return Report(channels=[ChannelReport(*c) for c in channels], **kw)


def test_worst_state_wins_and_nothing_is_ok():
    assert worst_state([OK, CRITICAL, WARNING]) == CRITICAL
    assert worst_state([]) == OK


def test_channel_path_encodes_one_segment():
    assert channel_path("a/b c") == "a%2Fb%20c"
    assert channel_path("..") == "%2E%2E"  # not resolved away: stays /api/channels/<id>/qr
    assert channel_path("a.b") == "a.b"


def test_channel_key_ignores_case_and_spaces():
    assert channel_key(" Imob Sites ") == "imobsites"


def test_qr_answer_with_a_data_url_is_a_qr():
    revival = classify_qr_answer(answer(body=b'{"result": {"base64Qrimg": "data:image/png;'
                                                b'base64,AAAA"}}'))
    assert revival.outcome == "qr_issued"


def test_qr_answer_with_empty_qr_is_a_reconnect_request():
    assert classify_qr_answer(answer(body=b'{"success": true, "qr": ""}')).outcome \
        == "reconnect_requested"


def test_redirect_answer_is_a_failure_naming_the_target():
    revival = classify_qr_answer(answer(301, b"", "text/html",
                                           location="https://evil.example/x?y"))
    assert revival.outcome == "failed" and "https://evil.example" in revival.detail


def test_redactor_hides_the_secret_whole_and_in_part():
    redact = Redactor(["Sup3rS3cretValue99"])
    assert redact("got Sup3rS3cretValue99!") == "got ***!"
    assert "S3cretVa" not in redact("prefix S3cretValue suffix")
    assert redact("nothing to hide") == "nothing to hide"


def test_quote_untrusted_cannot_forge_log_lines():
    assert quote_untrusted("a\nb\r\x1b[31m" + "x" * 500) .count("\n") == 0
    assert len(quote_untrusted("x" * 500)) == MAX_QUOTE_CHARS + 3


def test_first_down_run_opens_an_incident_without_alert():
    report = report_with(("a", "disconnected", False, "reconnect_requested"))
    incidents, items, notes = plan_incidents({}, report, NOW, POLICY)
    assert incidents["a"]["runs_down"] == 1 and incidents["a"]["kicks"] == 1
    assert items == [] and notes == []


def test_second_down_run_alerts_once():
    report = report_with(("a", "disconnected", False, "reconnect_requested"))
    first, _, _ = plan_incidents({}, report, NOW, POLICY)
    second, items, _ = plan_incidents(first, report, NOW + timedelta(minutes=15), POLICY)
    assert [i["kind"] for i in items] == ["alert"]
    _, items, _ = plan_incidents(second, report, NOW + timedelta(minutes=30), POLICY)
    assert items == []


def test_reminder_is_due_after_the_repeat_interval():
    report = report_with(("a", "qr_required", False, "qr_issued"))
    incidents, items, _ = plan_incidents({}, report, NOW, POLICY)
    assert [i["kind"] for i in items] == ["alert"]
    _, items, _ = plan_incidents(incidents, report, NOW + timedelta(hours=5), POLICY)
    assert items == []
    _, items, _ = plan_incidents(incidents, report, NOW + timedelta(hours=6), POLICY)
    assert [i["kind"] for i in items] == ["reminder"]


def test_recovery_closes_the_incident_with_a_note_and_a_resolved_item():
    down = report_with(("a", "qr_required", False, "qr_issued"))
    incidents, _, _ = plan_incidents({}, down, NOW, POLICY)
    up = report_with(("a", "connected", True))
    incidents, items, notes = plan_incidents(incidents, up, NOW + timedelta(minutes=45),
                                                POLICY)
    assert incidents == {}
    assert [i["kind"] for i in items] == ["resolved"]
    assert notes == [(OK, "channel a recovered after 45 min (1 kick, 1 run down)")]


def test_gateway_failure_leaves_channel_incidents_untouched():
    down = report_with(("a", "disconnected", False, "reconnect_requested"))
    incidents, _, _ = plan_incidents({}, down, NOW, POLICY)
    failed = Report(error="unreachable", error_state=CRITICAL, gateway_failed=True)
    after, items, _ = plan_incidents(incidents, failed, NOW, POLICY)
    assert after["a"] == incidents["a"]
    assert after[GATEWAY_KEY]["runs_down"] == 1 and items == []


def test_several_items_make_one_message():
    report = report_with(("a", "x", False, "qr_issued"), ("b", "x", False, "qr_issued"))
    _, items, _ = plan_incidents({}, report, NOW, POLICY)
    message = compose_alert(items, CRITICAL, "host", "run1", NOW)
    assert message["text"].count("\n- ") == 2
    assert [i["id"] for i in message["items"]] == ["a", "b"]


def test_missing_expected_channel_is_an_incident_that_alerts_after_n_runs():
    report = Report(missing_expected=["imobsites"])
    first, items, _ = plan_incidents({}, report, NOW, POLICY)
    assert first["imobsites"]["reason"] == "missing" and items == []
    _, items, _ = plan_incidents(first, report, NOW + timedelta(minutes=15), POLICY)
    assert [(i["kind"], i["reason"]) for i in items] == [("alert", "missing")]


state_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.sampled_from([NOW.isoformat(), "2026-02-09T14:30:00", "not a time"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4), max_leaves=12)
incident_tables = st.dictionaries(
    st.sampled_from(["a", "b", GATEWAY_KEY, "gone"]),
    st.dictionaries(st.sampled_from(["since", "runs_down", "kicks", "alerted_at",
                                     "last_alert_at", "reason", "last_status"]), state_values)
    | state_values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(previous=incident_tables, gateway_failed=st.booleans())
def test_a_hand_edited_state_never_breaks_the_plan(previous, gateway_failed):
    report = report_with(("a", "disconnected", False, "qr_issued"), ("b", "connected", True),
                         gateway_failed=gateway_failed, error="x" if gateway_failed else None)
    incidents, items, _ = plan_incidents(previous, report, NOW, POLICY)
    compose_alert(items, CRITICAL, "host", "run", NOW)
    json.dumps(_split_watchdog_incidents({"incidents": incidents}))
