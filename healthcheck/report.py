"""What one run found and did; its output lines, exit status and metrics (pure)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from .constants import (
    ACTIVITY_KEY,
    CRITICAL,
    DEFAULT_METRICS_MAX_CHANNELS,
    GATEWAY_KEY,
    MAX_CHANNEL_LINES,
    MAX_NOTE_LINES,
    MAX_PROBLEM_LINES,
    MAX_STATUS_DETAIL_LINES,
    MAX_STATUS_LINE_CHARS,
    OK,
    REVIVE_OUTCOMES,
    STATE_NAMES,
    UNKNOWN,
    WARNING,
)
from .model import Channel, ChannelReport, Revival
from .plan import Plan
from .silence import describe_silence
from .text import _fit, _fit_cap, _label, quote_untrusted, series_names
from .times import _iso, _parse_time


@dataclass
class Report:
    """What one run found and did: the single source of the output, the log and the JSON."""

    channels: list[ChannelReport] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: Lines worth logging that do not change the state: recoveries, deliveries, state-file news.
    notes: list[tuple[int, str]] = field(default_factory=list)
    missing_expected: list[str] = field(default_factory=list)
    error: Optional[str] = None
    error_state: int = OK
    gateway_failed: bool = False
    dry_run: bool = False
    incidents: dict = field(default_factory=dict)  # channel ids, GATEWAY_KEY, ACTIVITY_KEY
    alerts: list[dict] = field(default_factory=list)
    #: The activity source: None when not configured; else whether it was read this run.
    activity_read: Optional[bool] = None
    activity_error: Optional[str] = None
    #: Seconds the run took, for the performance data; set just before the report is printed.
    elapsed: float = 0.0
    gateway: str = "wrapper"
    #: An unexpected exception's traceback: it goes to the log (the bug report), not stdout.
    traceback: Optional[str] = None

    @property
    def state(self) -> int:
        return worst_state([self.error_state] + [c.state for c in self.channels]
                           + [state for state, _ in self.problems])

    @property
    def worth_logging(self) -> bool:
        return self.state != OK or bool(self.notes)

    def summary(self, limit: int = 0) -> str:
        """One line: the error, or how many channels are down and what came of it.

        With `limit`, channel lists are cut ("... and N more") so that the line fits.
        """
        parts = [self.error] if self.error else []

        def listed(head: str, channels: list, quoted=lambda c: quote_untrusted(c.id, 60)):
            # Only the few a line can show are quoted (of 200,000); the count is of them all.
            parts.append(_fit(head, [quoted(c) for c in channels[:_fit_cap(limit)]], limit,
                              len(channels)))

        down = [c for c in self.channels
                if not c.connected and c.action != "ignored" and c.outcome != "unknown"]
        if down:
            listed(f"{len(down)} of {len(self.channels)} channels not connected: ", down,
                   lambda c: f"{quote_untrusted(c.id, 60)} ({c.outcome}"
                             f"{', ' + c.verified if c.verified else ''})")
        unknown = [c for c in self.channels if c.outcome == "unknown"]
        if unknown:
            listed(f"status unknown this run for {len(unknown)}: ", unknown)
        silent = [c for c in self.channels if c.outcome == "silent"]
        if silent:
            listed(f"{len(silent)} connected but silent (no inbound message for too long): ",
                   silent)
        problems = [text for state, text in self.problems if state > OK]
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            parts.append(problems[0] + more)
        if not parts:
            ignored = sum(c.action == "ignored" for c in self.channels)
            parts.append(f"{len(self.channels) - ignored} channels connected"
                         + (f", {ignored} ignored" if ignored else ""))
        return "; ".join(parts)

    def status_line(self) -> str:
        """The first line for a monitoring system: at most 200 characters, then the perfdata."""
        head = f"WHATSAPP SESSIONS {STATE_NAMES[self.state]} - "
        text = head + self.summary(MAX_STATUS_LINE_CHARS - len(head))
        if len(text) > MAX_STATUS_LINE_CHARS:
            text = text[:MAX_STATUS_LINE_CHARS - 4].rstrip() + " ..."
        return f"{text.replace('|', '/')} | {self.perfdata()}"

    def perfdata(self) -> str:
        """Counts for this run in the monitoring-plugin format, always all, in a fixed order."""
        revived = [c for c in self.channels if c.outcome in REVIVE_OUTCOMES]
        watched = [c for c in self.channels if c.action != "ignored"]
        counts = (("channels", len(self.channels)),
                  ("connected", sum(c.connected for c in watched)),
                  ("not_connected", sum(not c.connected for c in watched)),
                  ("kicked", len(revived)),
                  ("reconnected", sum(c.verified == "reconnected" for c in self.channels)),
                  ("qr_issued", sum(c.outcome == "qr_issued" for c in self.channels)),
                  ("failed", sum(c.outcome == "failed" for c in self.channels)),
                  ("missing", len(self.missing_expected)))
        silent = sum(c.outcome == "silent" for c in self.channels)
        # The plugin guidelines' U (undetermined): with no listing, 0 channels would be a lie;
        # the calls (kicked ... failed) were counted, and none was made.
        unlisted = {"channels", "connected", "not_connected", "missing"} \
            if self.gateway_failed else set()
        fields = [f"{label}={'U' if label in unlisted else value};;;0"
                  for label, value in counts]
        fields.append(f"time={self.elapsed:.3f}s;;;0")
        silence_unread = self.gateway_failed or self.activity_read is False
        fields.append(f"silent={'U' if silence_unread else silent};;;0")
        # Appended after the others: a label's position never changes once it exists.
        ignored = len(self.channels) - len(watched)
        fields.append(f"ignored={'U' if self.gateway_failed else ignored};;;0")
        return " ".join(fields)

    def lines(self) -> list[tuple[int, str]]:
        """Return the report as (state, text) lines: the summary, then one per event."""
        out = [(self.state, f"WHATSAPP SESSIONS {STATE_NAMES[self.state]} - {self.summary()}")]
        down = [c for c in self.channels if c.outcome]
        for channel in down[:MAX_CHANNEL_LINES]:
            status = quote_untrusted(channel.status or "(none)", 40)
            verified = f", {channel.verified}" if channel.verified else ""
            out.append((channel.state, f"channel {quote_untrusted(channel.id, 80)}: status "
                                       f"{status}, {channel.outcome}{verified}: {channel.detail}"))
        if len(down) > MAX_CHANNEL_LINES:
            out.append((worst_state(c.state for c in down[MAX_CHANNEL_LINES:]),
                        f"... and {len(down) - MAX_CHANNEL_LINES} more channels need attention "
                        f"(see --json)"))
        out += self.problems[:MAX_PROBLEM_LINES]
        if len(self.problems) > MAX_PROBLEM_LINES:
            out.append((worst_state(s for s, _ in self.problems[MAX_PROBLEM_LINES:]),
                        f"... and {len(self.problems) - MAX_PROBLEM_LINES} more problems"))
        out += self.notes[:MAX_NOTE_LINES]
        if len(self.notes) > MAX_NOTE_LINES:
            out.append((worst_state(s for s, _ in self.notes[MAX_NOTE_LINES:]),
                        f"... and {len(self.notes) - MAX_NOTE_LINES} more notes (see --json)"))
        return out

    def to_json(self) -> dict:
        return {
            "state": STATE_NAMES[self.state],
            "exit_code": self.state,
            "dry_run": self.dry_run,
            "error": self.error,
            "summary": self.summary(),
            "gateway": self.gateway,
            "channels": [{"id": c.id, "status": c.status, "connected": c.connected,
                          "gateway_status": c.status, "condition": c.condition or None,
                          "action": c.action, "outcome": c.outcome, "verified": c.verified,
                          "detail": c.detail or None,
                          "last_inbound_at": _iso(c.silence.last_inbound) if c.silence else None,
                          "expected_inbound": round(c.silence.expected, 1) if c.silence
                          else None,
                          "incident": self.incidents.get(c.id)} for c in self.channels],
            "gateway_incident": self.incidents.get(GATEWAY_KEY),
            "activity": None if self.activity_read is None else {
                "read": self.activity_read, "error": self.activity_error,
                "incident": self.incidents.get(ACTIVITY_KEY)},
            "problems": [{"state": STATE_NAMES[s], "message": m} for s, m in self.problems],
            "notes": [{"state": STATE_NAMES[s], "message": m} for s, m in self.notes],
            "alerts": self.alerts,
        }


#: Channels whose last known series are kept in the state for a run that cannot list them;
#: the down ones first. About 100 bytes each.
MAX_REMEMBERED_CHANNELS = 5000


#: How a channel the plan left waiting is reported: its plan action -> its outcome.
WAITING_OUTCOMES = {"wait_qr": "qr_pending", "wait_grace": "in_grace", "alert_stuck": "stuck",
                    "unknown": "unknown", "wait_restart": "restart_pending",
                    "wait_loop": "in_grace", "alert_loop": "stuck"}


def channel_reports(plan: Plan, revivals: list[tuple[Channel, Revival]], verified: dict,
                    asks_person: dict, now: datetime) -> list[ChannelReport]:
    """One report line per planned channel: what the plan said, and what its revive came to.

    `verified` holds reconnected/still_down per revived channel; `asks_person` the channels
    whose status read after their revive asks for a person, as that read shows them.
    """
    outcomes = {channel.id: revival for channel, revival in revivals}
    reports = []
    for entry in plan.channels:
        channel = asks_person.get(entry.channel.id, entry.channel)
        revival = outcomes.get(channel.id)
        if entry.action in WAITING_OUTCOMES:
            revival = Revival(WAITING_OUTCOMES[entry.action], entry.detail)
        elif entry.action == "alert_silent":
            revival = Revival("silent", describe_silence(entry.silence, now))
        elif entry.action == "ignored":
            revival = Revival("ignored", entry.detail)
        elif entry.action == "revive_loop" and revival is not None:
            revival = Revival("stuck", f"{entry.detail}; this run's revive: "
                                       f"{revival.outcome}, {revival.detail}")
        reports.append(ChannelReport(
            channel.id, channel.status, channel.connected,
            revival.outcome if revival else None, revival.detail if revival else channel.detail,
            verified.get(channel.id), entry.silence, entry.action, channel.condition,
            in_grace=entry.in_grace))
    return reports


def remembered_channels(previous, report: Report, now: datetime) -> dict:
    """Return each channel's last known gauges ({id: {up, silent, status, seen_at}}).

    Pure. A run that listed the channels replaces them; a run that could not list them (the
    gateway failed, or listed none) keeps the previous ones, so their series outlive it.
    """
    if not report.channels:
        # Checked as the state may have been edited by hand: each value goes into the file.
        return {key: value for key, value in previous.items()
                if isinstance(value, dict) and value.get("up") in (0, 1)
                and value.get("silent") in (0, 1) and isinstance(value.get("status"), str)
                and all(type(value.get(k)) is int for k in ("up", "silent", "seen_at"))} \
            if isinstance(previous, dict) else {}
    ordered = sorted(report.channels, key=lambda c: not c.down_now)
    return {c.id: {"up": 0 if c.down_now else 1, "silent": int(c.outcome == "silent"),
                   "status": c.status or "(none)", "seen_at": round(now.timestamp())}
            for c in ordered[:MAX_REMEMBERED_CHANNELS]}


def metrics_text(report: Report, incidents: dict, now: datetime,
                 remembered: Optional[dict] = None,
                 max_channels: int = DEFAULT_METRICS_MAX_CHANNELS) -> str:
    """Return this run's metrics in the Prometheus text format (node_exporter's textfile).

    Pure. Channel gauges reflect the channels as this run left them: a revive verified
    `reconnected` counts as up. When this run could not list them, they are the last known
    values (`remembered`, from remembered_channels): a series that vanished would clear a
    firing alert and restart its `for:` wait. At most `max_channels` channels get their own
    series, those that need attention first; the totals count them all.
    """
    out = []

    def family(name: str, kind: str, text: str, samples) -> None:
        out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{labels} {value}\n" for labels, value in samples)

    def channel(channel_id: str) -> str:
        return f'{{channel="{_label(names[channel_id])}"}}'

    if report.channels:
        seen = round(now.timestamp())  # as remembered_channels keeps it
        gauges = [(c.id, 0 if c.down_now else 1, int(c.outcome == "silent"),
                   c.status or "(none)", seen) for c in report.channels]
    else:
        gauges = [(key, value["up"], value["silent"], value["status"], value["seen_at"])
                  for key, value in (remembered or {}).items()]
    # Prometheus and node_exporter slow down with hundreds of thousands of series: those that
    # need attention get theirs first.
    shown = sorted(gauges, key=lambda g: not (g[1] == 0 or g[2] == 1))[:max(max_channels, 0)]
    omitted = len(gauges) - len(shown)
    if omitted:
        out.append(f"# {omitted} of {len(gauges)} channels have no series of their own "
                   f"(HEALTHCHECK_METRICS_MAX_CHANNELS={max_channels}); those not connected "
                   f"come first, the totals count them all\n")
    names = series_names([key for key, _, _, _, _ in shown])
    # HEALTHCHECK_IGNORE_CHANNELS: stopped on purpose, so no "down" series for an alert rule.
    ignored = {c.id for c in report.channels if c.action == "ignored"}
    family("whatsapp_session_up", "gauge", "1 when the channel is connected, else 0.",
           [(channel(key), up) for key, up, _, _, _ in shown if key not in ignored])
    family("whatsapp_session_status", "gauge", "The status the gateway lists for the channel.",
           [(f'{channel(key)[:-1]},status="{_label(quote_untrusted(status, 40))}"}}', 1)
            for key, _, _, status, _ in shown])
    family("whatsapp_session_silent", "gauge", "1 when a connected channel has gone silent "
           "(no inbound message for too long).",
           [(channel(key), silent) for key, _, silent, _, _ in shown])
    family("whatsapp_session_last_seen_timestamp_seconds", "gauge",
           "When the gateway last listed the channel (the other series are as of then).",
           [(channel(key), seen_at) for key, _, _, _, seen_at in shown])
    since = []
    for key, _, _, _, _ in shown:
        started = _parse_time((incidents.get(key) or {}).get("since"))
        if started is not None:
            since.append((channel(key), f"{started.timestamp():.0f}"))
    family("whatsapp_session_down_since_timestamp_seconds", "gauge",
           "When the channel's open incident began (down, QR, or silent).", since)
    family("whatsapp_gateway_up", "gauge", "1 when the gateway answered the channel list.",
           [("", 0 if report.gateway_failed else 1)])
    family("whatsapp_healthcheck_last_run_timestamp_seconds", "gauge",
           "When the last run ended.", [("", f"{now.timestamp():.0f}")])
    family("whatsapp_healthcheck_duration_seconds", "gauge", "How long the last run took.",
           [("", f"{report.elapsed:.3f}")])
    family("whatsapp_healthcheck_exit_status", "gauge",
           "The last run's exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
           [("", report.state)])
    outcomes = sorted(REVIVE_OUTCOMES | {"qr_pending", "would_reconnect"})
    family("whatsapp_healthcheck_kicks", "gauge", "Reconnect calls in the last run, by outcome.",
           [(f'{{outcome="{o}"}}', sum(c.outcome == o for c in report.channels))
            for o in outcomes])
    family("whatsapp_healthcheck_channels", "gauge", "Channels listed by the last run, by "
           "state; counts every channel, with or without a series of its own.",
           [('{state="listed"}', len(report.channels)),
            ('{state="connected"}', sum(not c.down_now for c in report.channels
                                        if c.id not in ignored)),
            ('{state="not_connected"}', sum(c.down_now for c in report.channels)),
            ('{state="silent"}', sum(c.outcome == "silent" for c in report.channels)),
            # Appended last: an ignored channel is neither connected nor down to an alert rule.
            ('{state="ignored"}', len(ignored))])
    family("whatsapp_healthcheck_channels_omitted", "gauge", "Channels left without a series "
           "of their own by HEALTHCHECK_METRICS_MAX_CHANNELS.", [("", omitted)])
    return "".join(out)


#: How bad each state is when several are combined, the monitoring-plugins order
#: (max_state_alt): a finding outranks "could not tell", so a failing side source never hides
#: that a person must act. The exit codes' numeric order (UNKNOWN = 3) is not this order.
STATE_SEVERITY = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}


def worst_state(states) -> int:
    """Return the combined state: CRITICAL > WARNING > UNKNOWN > OK (OK when there is none)."""
    return max(states, key=STATE_SEVERITY.__getitem__, default=OK)


def last_run_record(report: Report, run_id: str, ended: datetime) -> dict:
    """Return what `--status` repeats of this run: its status line, perfdata and details."""
    details = [text.replace("|", "/")[:MAX_STATUS_LINE_CHARS * 2]
               for _, text in report.lines()[1:MAX_STATUS_DETAIL_LINES + 1]]
    return {"ended_at": ended.isoformat(timespec="seconds"), "run_id": run_id,
            "exit_status": report.state, "status_line": report.status_line(),
            "details": details}


def judge_last_run(last: dict, now: datetime, max_age_minutes: float) -> tuple[int, list[str]]:
    """Return `--status`'s exit status and lines: the last run's own, or CRITICAL when stale.

    Pure: the record `read_last_run` returned, the time and the allowed age in.
    """
    ended = _parse_time(last["ended_at"])
    age = max((now - ended).total_seconds(), 0.0)
    text = last["status_line"].split(" | ", 1)[0]
    if age > max_age_minutes * 60:
        line = (f"WHATSAPP SESSIONS CRITICAL - no cron run has finished for {age / 60:.0f} min "
                f"(HEALTHCHECK_STATUS_MAX_AGE_MINUTES is {max_age_minutes:g}): cron no longer "
                f"runs the script, or its runs are killed before they end; check the crontab "
                f"and the log")
        return CRITICAL, [f"{line} | age={age:.0f}s;;{max_age_minutes * 60:.0f};0",
                          f"last result, at {last['ended_at']}: {text}"]
    return last["exit_status"], [
        last["status_line"],
        f"last cron run {quote_untrusted(last.get('run_id') or '?', 20)} ended at "
        f"{last['ended_at']} ({age / 60:.0f} min ago); this check made no gateway call",
        *[d for d in last.get("details") or [] if isinstance(d, str)][:MAX_STATUS_DETAIL_LINES]]
