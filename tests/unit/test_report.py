"""healthcheck/report.py in-process: the run's state, its lines, its status line, its metrics.

Reports are built by hand from ChannelReports; the metrics text is read back with the
Prometheus client's own parser, as node_exporter's textfile collector would read it.
"""

import sys
from datetime import datetime, timedelta, timezone

from conftest import ROOT
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(ROOT))
from healthcheck.constants import (
    CRITICAL,
    MAX_CHANNEL_LINES,
    MAX_STATUS_LINE_CHARS,
    OK,
    UNKNOWN,
    WARNING,
)
from healthcheck.model import ChannelReport, Silence
from healthcheck.report import (
    Report,
    judge_last_run,
    last_run_record,
    metrics_text,
    remembered_channels,
    worst_state,
)

NOW = datetime(2026, 2, 9, 14, 30, tzinfo=timezone(timedelta(hours=-3)))
SEEN = round(NOW.timestamp())


def connected(channel_id="a") -> ChannelReport:
    return ChannelReport(channel_id, "connected", True)


def kicked(channel_id="b", outcome="reconnect_requested", **fields) -> ChannelReport:
    return ChannelReport(channel_id, "disconnected", False, outcome, **fields)


def ignored(channel_id="i") -> ChannelReport:
    return ChannelReport(channel_id, "disconnected", False, "ignored", action="ignored")


def samples(text: str) -> dict:
    """{family name: {frozenset of label pairs: value}} of a metrics text."""
    return {family.name: {frozenset(s.labels.items()): s.value for s in family.samples}
            for family in text_string_to_metric_families(text)}


def by_channel(series: dict) -> dict:
    return {dict(labels)["channel"]: value for labels, value in series.items()}


# -- the state ------------------------------------------------------------------------------------

def test_worst_state_follows_the_monitoring_plugins_order():
    assert worst_state([UNKNOWN, WARNING]) == WARNING  # a finding outranks "could not tell"
    assert worst_state([OK, UNKNOWN]) == UNKNOWN
    assert worst_state([CRITICAL, UNKNOWN, WARNING]) == CRITICAL
    assert worst_state([]) == OK
    assert worst_state(iter([WARNING, OK])) == WARNING  # any iterable


def test_a_channel_state_comes_from_its_outcome_and_its_condition():
    assert connected().state == OK
    assert kicked().state == WARNING
    assert kicked(outcome="qr_issued").state == CRITICAL
    assert kicked(condition="needs_person").state == CRITICAL  # whatever the revive answered
    assert ignored().state == OK


def test_the_report_state_combines_channels_problems_and_the_error():
    assert Report(channels=[connected()]).state == OK
    assert Report(channels=[kicked()], problems=[(UNKNOWN, "entry #3 has no id")]).state \
        == WARNING
    assert Report(problems=[(UNKNOWN, "listed nothing")]).state == UNKNOWN
    assert Report(error="unreachable", error_state=CRITICAL).state == CRITICAL


# -- the lines ------------------------------------------------------------------------------------

def test_summary_of_a_healthy_run_counts_the_connected_and_the_ignored():
    assert Report(channels=[connected(), connected("b")]).summary() == "2 channels connected"
    assert Report(channels=[connected(), connected("b"), ignored()]).summary() == \
        "2 channels connected, 1 ignored"


def test_summary_names_the_channels_down_with_their_outcome_and_the_first_problem():
    report = Report(channels=[connected(), kicked(verified="reconnected"),
                              kicked("c", "qr_issued")],
                    problems=[(CRITICAL, "expected channel x is missing"), (WARNING, "second"),
                              (OK, "not a problem")])
    assert report.summary() == ("2 of 3 channels not connected: b (reconnect_requested, "
                                "reconnected), c (qr_issued); expected channel x is missing "
                                "(and 1 more problems)")


def test_summary_keeps_unknown_and_silent_channels_apart_from_the_down_ones():
    silent = ChannelReport("s", "connected", True, "silent",
                           silence=Silence(NOW.timestamp() - 7200, 9.0, "history"))
    unread = ChannelReport("u", "(unknown)", False, "unknown")
    assert Report(channels=[silent, unread]).summary() == (
        "status unknown this run for 1: u; 1 connected but silent (no inbound message for too "
        "long): s")


def test_lines_are_the_summary_then_one_per_channel_with_an_outcome_then_problems_and_notes():
    report = Report(channels=[connected(), kicked(detail="asked to reconnect")],
                    problems=[(WARNING, "a problem")], notes=[(OK, "a note")])
    assert report.lines() == [
        (WARNING, "WHATSAPP SESSIONS WARNING - 1 of 2 channels not connected: b "
                  "(reconnect_requested); a problem"),
        (WARNING, "channel b: status disconnected, reconnect_requested: asked to reconnect"),
        (WARNING, "a problem"),
        (OK, "a note")]


def test_lines_are_bounded_whatever_the_number_of_channels_down():
    report = Report(channels=[kicked(f"c{i}") for i in range(MAX_CHANNEL_LINES + 5)])
    lines = report.lines()
    assert len(lines) == 1 + MAX_CHANNEL_LINES + 1
    assert lines[-1] == (WARNING, "... and 5 more channels need attention (see --json)")


def test_status_line_fits_200_characters_and_carries_the_perfdata():
    report = Report(channels=[kicked(f"channel-{i:04}") for i in range(500)])
    text, perfdata = report.status_line().split(" | ")
    assert text.startswith("WHATSAPP SESSIONS WARNING - 500 of 500 channels not connected: ")
    assert len(text) <= MAX_STATUS_LINE_CHARS and text.endswith(" more")
    assert perfdata.startswith("channels=500;;;0 connected=0;;;0 not_connected=500;;;0 "
                               "kicked=500;;;0")


def test_a_pipe_in_a_channel_id_cannot_cut_the_perfdata_short():
    line = Report(channels=[kicked("a|b=1")]).status_line()
    assert line.count(" | ") == 1 and line.count("|") == 1 and "a/b=1" in line


def test_perfdata_counts_are_undetermined_when_the_gateway_could_not_be_listed():
    failed = Report(error="unreachable", error_state=CRITICAL, gateway_failed=True)
    assert failed.perfdata() == ("channels=U;;;0 connected=U;;;0 not_connected=U;;;0 "
                                 "kicked=0;;;0 reconnected=0;;;0 qr_issued=0;;;0 failed=0;;;0 "
                                 "missing=U;;;0 time=0.000s;;;0 silent=U;;;0 ignored=U;;;0")
    watched = Report(channels=[connected(), kicked(), ignored()], elapsed=1.25).perfdata()
    assert "channels=3;;;0 connected=1;;;0 not_connected=1;;;0" in watched
    assert "time=1.250s;;;0" in watched and watched.endswith("ignored=1;;;0")


# -- the metrics ----------------------------------------------------------------------------------

def test_metrics_parse_and_give_each_channel_its_gauges():
    report = Report(channels=[connected(), kicked(), kicked("c", "qr_issued"), ignored()],
                    elapsed=1.5)
    found = samples(metrics_text(report, {"b": {"since": NOW.isoformat()}}, NOW))
    assert by_channel(found["whatsapp_session_up"]) == {"a": 1, "b": 0, "c": 0}  # not i
    assert set(by_channel(found["whatsapp_session_status"])) == {"a", "b", "c", "i"}
    assert by_channel(found["whatsapp_session_down_since_timestamp_seconds"]) == {"b": SEEN}
    assert found["whatsapp_healthcheck_exit_status"] == {frozenset(): CRITICAL}
    assert found["whatsapp_healthcheck_duration_seconds"] == {frozenset(): 1.5}
    assert found["whatsapp_gateway_up"] == {frozenset(): 1}
    kicks = {dict(k)["outcome"]: v for k, v in found["whatsapp_healthcheck_kicks"].items()}
    assert kicks["reconnect_requested"] == 1 and kicks["qr_issued"] == 1
    assert kicks["failed"] == 0


def test_the_channel_totals_count_an_ignored_channel_neither_connected_nor_down():
    # An ignored channel that is disconnected once counted as connected in the totals.
    report = Report(channels=[connected(), kicked(), ignored()])
    found = samples(metrics_text(report, {}, NOW))
    totals = {dict(k)["state"]: v for k, v in found["whatsapp_healthcheck_channels"].items()}
    assert totals == {"listed": 3, "connected": 1, "not_connected": 1, "silent": 0,
                      "ignored": 1}


def test_metric_labels_survive_quotes_backslashes_and_line_breaks():
    odd = 'b"\\x\ny'
    found = samples(metrics_text(Report(channels=[kicked(odd)]), {}, NOW))
    assert list(by_channel(found["whatsapp_session_up"])) == ['b"\\x?y']


def test_metrics_give_series_to_the_channels_down_first_within_the_limit():
    report = Report(channels=[connected(), connected("a2"), kicked()])
    text = metrics_text(report, {}, NOW, max_channels=1)
    assert text.startswith("# 2 of 3 channels have no series of their own "
                           "(HEALTHCHECK_METRICS_MAX_CHANNELS=1)")
    found = samples(text)
    assert by_channel(found["whatsapp_session_up"]) == {"b": 0}
    assert found["whatsapp_healthcheck_channels_omitted"] == {frozenset(): 2}
    states = {dict(k)["state"]: v for k, v in found["whatsapp_healthcheck_channels"].items()}
    assert states == {"listed": 3, "connected": 2, "not_connected": 1, "silent": 0,
                      "ignored": 0}


def test_a_run_that_could_not_list_keeps_the_last_known_series():
    before = remembered_channels({}, Report(channels=[connected(), kicked()]),
                                 NOW - timedelta(minutes=15))
    failed = Report(error="unreachable", error_state=CRITICAL, gateway_failed=True)
    kept = remembered_channels(before, failed, NOW)
    assert kept == before
    found = samples(metrics_text(failed, {}, NOW, kept))
    assert by_channel(found["whatsapp_session_up"]) == {"a": 1, "b": 0}
    assert set(by_channel(found["whatsapp_session_last_seen_timestamp_seconds"]).values()) \
        == {SEEN - 900}
    assert found["whatsapp_gateway_up"] == {frozenset(): 0}


def test_remembered_channels_drop_hand_edited_values():
    edited = {"a": {"up": 1, "silent": 0, "status": "connected", "seen_at": 5},
              "b": {"up": 2, "silent": 0, "status": "x", "seen_at": 5},
              "c": {"up": True, "silent": 0, "status": "x", "seen_at": 5},
              "d": "not a dict"}
    assert list(remembered_channels(edited, Report(), NOW)) == ["a"]
    assert remembered_channels("not a dict", Report(), NOW) == {}


# -- --status -------------------------------------------------------------------------------------

def record(**fields) -> dict:
    report = Report(channels=[connected(), kicked(detail="asked")])
    return {**last_run_record(report, "run-7", NOW), **fields}


def test_a_fresh_last_run_is_repeated_with_its_state_and_details():
    state, lines = judge_last_run(record(), NOW + timedelta(minutes=10), 35)
    assert state == WARNING
    assert lines[0].startswith("WHATSAPP SESSIONS WARNING - 1 of 2 channels not connected")
    assert lines[1] == (f"last cron run run-7 ended at {NOW.isoformat(timespec='seconds')} "
                        f"(10 min ago); this check made no gateway call")
    assert lines[2:] == ["channel b: status disconnected, reconnect_requested: asked"]


def test_a_stale_last_run_is_critical_and_says_cron_stopped():
    state, lines = judge_last_run(record(), NOW + timedelta(minutes=40), 35)
    assert state == CRITICAL
    assert lines[0].startswith("WHATSAPP SESSIONS CRITICAL - no cron run has finished for 40 min "
                               "(HEALTHCHECK_STATUS_MAX_AGE_MINUTES is 35)")
    assert lines[0].endswith(" | age=2400s;;2100;0")
    assert lines[1].startswith("last result, at ") and "1 of 2 channels not connected" in lines[1]


def test_details_that_are_not_text_are_left_out():
    _, lines = judge_last_run(record(details=["ok line", 5, None]), NOW, 35)
    assert lines[2:] == ["ok line"]
