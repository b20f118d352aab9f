"""One run, in the order it happens: gather, plan, act, record, report."""

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Optional

from .bounded import run_bounded
from .constants import OK, PROGRAM, REVIVE_OUTCOMES, STATE_VERSION, UNKNOWN, WARNING, __version__
from .errors import HealthcheckError
from .files import RunLock, append_log, load_state, save_state, write_metrics
from .gateways import GATEWAYS
from .incidents import (
    AlertPolicy,
    compose_alert,
    count_unfinished_run,
    plan_flaps,
    plan_incidents,
    repaired_drops,
)
from .model import Channel, Listing, Revival
from .notify import StartPing, deliver_alerts, ping_slice, send_ping
from .plan import PlanPolicy, after_revive, plan_run
from .report import (
    Report,
    channel_reports,
    last_run_record,
    metrics_text,
    remembered_channels,
)
from .settings import Settings, _hostname, setup_warnings
from .silence import assess_silence
from .text import channel_key, describe_told_apart, quote_untrusted, series_names


class Effects:
    """What a run does to the world: revive calls, pings, alerts, locks and files.

    `--dry-run` is one switch, where the effects are chosen: `DryRun` makes none of these and
    records what it would have done. The run itself never asks whether it is a dry run.
    """

    dry_run = False

    def load_state(self, path) -> tuple[dict, list[tuple[int, str]]]:
        return load_state(path, read_only=False)

    def lock(self, held: RunLock, run_id: str) -> bool:
        return held.acquire(run_id)

    def revive(self, gateway, jobs: list[tuple[Channel, bool]], workers: int, end: float,
               revive_calls: list[str]) -> list[Revival]:
        return revive_all(gateway, jobs, workers, end, revive_calls)

    def verify(self, gateway, made: list[Channel], wait: float, end: float, report: Report,
               relisted: dict) -> dict[str, str]:
        return verify_revivals(gateway, made, wait, end, report, relisted) if made else {}

    def start_ping(self, settings: Settings, body: str, end: float,
                   rid: str) -> Optional[StartPing]:
        return StartPing(settings, body, end, rid) if settings.ping_url else None

    def ping(self, settings: Settings, suffix: str, body: str, end: float,
             rid: str) -> Optional[str]:
        return send_ping(settings, suffix, body, end, rid) if settings.ping_url else None

    def deliver(self, settings: Settings, pending: list, message: Optional[dict], end: float,
                report: Report) -> list:
        return deliver_alerts(settings, pending, message, end, report)

    def save_state(self, path, state: dict, redact) -> Optional[str]:
        return save_state(path, state, redact)

    def write_metrics(self, path, text: str) -> None:
        write_metrics(path, text)

    def append_log(self, path, run_id: str, lines: list[tuple[int, str]]) -> bool:
        """Append the lines to the log; return whether they were written."""
        append_log(path, run_id, lines)
        return True


class DryRun(Effects):
    """`--dry-run` (and `--status`): the same run, with no call, ping, alert, lock or write."""

    dry_run = True

    def load_state(self, path) -> tuple[dict, list[tuple[int, str]]]:
        return load_state(path, read_only=True)

    def lock(self, held: RunLock, run_id: str) -> bool:
        return True

    def revive(self, gateway, jobs, workers, end, revive_calls) -> list[Revival]:
        return [Revival("would_reconnect", "dry run: no reconnect call made") for _ in jobs]

    def verify(self, gateway, made, wait, end, report, relisted) -> dict[str, str]:
        return {}

    def start_ping(self, settings, body, end, rid) -> None:
        return None

    def ping(self, settings, suffix, body, end, rid) -> None:
        return None

    def deliver(self, settings, pending, message, end, report) -> list:
        if message is not None:
            report.alerts.append({"text": message["text"], "items": message["items"],
                                  "would_send_to": settings.alert_destinations})
        return pending

    def save_state(self, path, state, redact) -> None:
        return None

    def write_metrics(self, path, text) -> None:
        pass

    def append_log(self, path, run_id, lines) -> bool:
        return False


@dataclass
class RunContext:
    """What one run knows about itself: ids, time limits, flags, and what it has done so far."""

    run_id: str
    started: float  # time.monotonic() at start
    hard_end: float
    budget_end: float  # the gateway calls stop here; the rest is kept for alerts, state, pings
    effects: Effects = field(default_factory=Effects)
    force: bool = False
    #: healthchecks.io run id: the same on /start and on the end ping, so runs can be told apart.
    ping_rid: str = ""
    #: Channels whose reconnect call was made, in the order they finished (read on SIGTERM).
    revive_calls: list[str] = field(default_factory=list)
    #: "run=... started=..." of a previous run that never finished (killed from outside).
    unfinished: str = ""
    lock_problem: Optional[str] = None
    #: Print every setup warning (--verbose, --dry-run), not only the ones new since last run.
    all_warnings: bool = False
    #: The run's clock: the local time now, with its zone.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now().astimezone())

    @property
    def dry_run(self) -> bool:
        """Whether this run only says what it would do (the report words it so)."""
        return self.effects.dry_run


def run_check(settings: Settings, run: RunContext, warn: Callable[[str], None]) -> Report:
    """One run under the lock, in the order it happens: gather, plan, act, record, report.

    Gather the state (and say its setup warnings), then the gateway part (list, plan, revive,
    verify, silences: `check_gateway`); plan the incidents and the alert they call for (pure);
    act: deliver the alert; record the state and the metrics; report: the end ping. The report
    itself is printed by the CLI.
    """
    state, state_notes = run.effects.load_state(settings.state_path)
    warnings = say_setup_warnings(settings, run, state, warn)
    killed_note = count_killed_run(settings, run, state)
    start_ping = run.effects.start_ping(
        settings, f"{_hostname()}: run {run.run_id} started ({PROGRAM} {__version__})",
        min(time.monotonic() + ping_slice(settings.deadline), run.hard_end), run.ping_rid)
    try:
        report, activity = check_gateway(settings, run, state, run.clock())
    except Exception:  # noqa: BLE001 - the last guard: the incident counting must go on
        # Whatever the gateway sent that we failed on, it counts as the gateway failing, so
        # "the gateway keeps failing" reaches a person on schedule.
        report = bug_report(run.dry_run, settings.redact, gateway_failed=True)
        activity = state.get("activity") if settings.activity else None
    report.notes[:0] = state_notes
    if run.lock_problem:
        report.problems.append((UNKNOWN, run.lock_problem))
    if killed_note:
        report.problems.append((WARNING, killed_note))

    now = run.clock()
    followup = plan_followup(settings, run, state, report, now)
    pending = run.effects.deliver(settings, state["pending_alerts"], followup.alert,
                                  run.hard_end, report)
    record(settings, run, state, report, followup, pending, activity, warnings, now)
    if start_ping is not None:
        send_end_ping(settings, run, report, followup.incidents, start_ping)
    return report


def say_setup_warnings(settings: Settings, run: RunContext, state: dict,
                       warn: Callable[[str], None]) -> list[str]:
    """Say each setup warning new since the last run (all of them on --verbose and --dry-run).

    Said on every run, they would make cron mail every 15 minutes. Returns them all, for the
    state to remember.
    """
    warnings = setup_warnings(settings)
    seen = state.get("warned") if isinstance(state.get("warned"), list) else []
    for text in warnings:
        if run.all_warnings or _digest(text) not in seen:
            warn(text)
    return warnings


def count_killed_run(settings: Settings, run: RunContext, state: dict) -> Optional[str]:
    """Count a previous run that was killed before it finished; return the notice, if any."""
    if not run.unfinished:
        return None
    state["incidents"], notice = count_unfinished_run(state["incidents"], run.unfinished,
                                                      run.clock())
    try:  # counted now: if this run is killed too, the count still grows
        run.effects.save_state(settings.state_path, state, settings.redact)
    except OSError:
        pass  # said at the end, when the state is written again
    return notice


def check_gateway(settings: Settings, run: RunContext, state: dict,
                  now: datetime) -> tuple[Report, Optional[dict]]:
    """The gateway part of a run: list, plan, revive, verify; then silences and their restarts.

    Returns the report (failures land in it) and the activity history to keep (None when the
    activity source is not configured; the previous history when it could not be read).
    """
    report = Report(dry_run=run.dry_run, gateway=settings.gateway)
    gateway = GATEWAYS[settings.gateway](settings, run.budget_end)
    previous_activity = state.get("activity") if isinstance(state.get("activity"), dict) else {}
    kept_activity = previous_activity if settings.activity else None
    # Gather: the listing.
    cpu_started = time.process_time()
    try:
        listing = list_channels(gateway)
    except HealthcheckError as exc:
        report.error, report.error_state, report.gateway_failed = str(exc), exc.state, True
        return report, kept_activity
    told_apart = describe_told_apart(series_names([c.id for c in listing.channels]))
    if told_apart:
        report.notes.append((WARNING, told_apart))
    # Plan (pure), then act: revive and verify. The gateway part comes before the activity
    # read, on the deadline's full budget: a slow or locked activity database must never starve
    # a revive. Silences only concern connected channels, so this plan's revivals are the final
    # plan's, less the restarts of silent channels.
    policy = plan_policy(settings, gateway.abilities)
    plan = plan_run(listing, settings.expected_channels, state["incidents"], {}, now,
                    policy, run.force)
    # What follows the revivals (incidents, report, state, metrics) costs up to twice the CPU
    # time that listing and planning took: seconds for 200,000 channels. Keep that much back,
    # so that the run still ends within the deadline whatever the listing's size.
    revive_end = run.budget_end - 2 * (time.process_time() - cpu_started)
    revivals = revive(gateway, run, plan.revivals, revive_end)
    made = [channel for channel, revival in revivals if revival.outcome in REVIVE_OUTCOMES]
    relisted: dict[str, Channel] = {}
    verified = run.effects.verify(gateway, made, settings.verify_seconds, revive_end, report,
                                  relisted)
    revived = [(channel, after_revive(revival, relisted.get(channel.id), policy))
               for channel, revival in revivals]
    # A revive that the second listing shows asking for a person is reported with its status
    # now, so that the QR backoff starts from it.
    asks_person = {channel.id: relisted[channel.id]
                   for (channel, revival), (_, after) in zip(revivals, revived)
                   if after.outcome == "qr_issued" and revival.outcome != "qr_issued"}
    revivals = revived
    # Gather: the activity; plan again with the silences, and act: restart the silent ones.
    activity, silences = read_silences(settings, run, previous_activity, listing, now, report)
    if silences:
        plan = plan_run(listing, settings.expected_channels, state["incidents"], silences, now,
                        policy, run.force)
        revivals += revive(gateway, run, [(c, restart) for c, restart in plan.revivals
                                          if restart], revive_end)
    report.problems[:0] = plan.problems
    report.missing_expected = plan.missing
    report.channels = channel_reports(plan, revivals, verified, asks_person, now)
    return report, activity if settings.activity else None


def list_channels(gateway) -> Listing:
    """The gateway's listing, with what the gateway said masked: a status may echo the key."""
    listing = gateway.list_sessions()
    redact, masked = gateway.http.origin.redact, {}

    def mask(text: str) -> str:
        if text not in masked:  # a few distinct words, whatever the number of channels
            masked[text] = redact(text)
        return masked[text]

    channels = []
    for channel in listing.channels:
        status, detail = mask(channel.status), mask(channel.detail)
        if (status, detail) != (channel.status, channel.detail):
            channel = dataclasses.replace(channel, status=status, detail=detail)
        channels.append(channel)
    listing.channels = channels
    return listing


def plan_policy(settings: Settings, abilities) -> PlanPolicy:
    """The settings and the gateway's abilities the plan follows, as plain data."""
    return PlanPolicy(
        qr_retry_hours=settings.qr_retry_hours,
        starting_grace_minutes=settings.starting_grace_minutes,
        revive_transient=abilities.revive_transient,
        restart_silent=settings.silent_action == "restart" and abilities.restart_connected,
        ignore=settings.ignore_channels,
        lost_login_after_start=abilities.lost_login_after_start,
        reconnect_loop_words=abilities.reconnect_loop_words)


def revive(gateway, run: RunContext, jobs: list[tuple[Channel, bool]],
           end: float) -> list[tuple[Channel, Revival]]:
    """Revive every (channel, restart) job through the run's effects; each with its result."""
    results = run.effects.revive(gateway, jobs, gateway.settings.workers, end, run.revive_calls)
    return list(zip([channel for channel, _ in jobs], results))


def revive_all(gateway, jobs: list[tuple[Channel, bool]], workers: int,
               budget_end: float, revive_calls: list[str]) -> list[Revival]:
    """Revive every (channel, restart) job, at most `workers` at once; in the jobs' order.

    Each channel is added to `revive_calls` as its call ends, so a run stopped by a signal can say
    which reconnect calls were already made. A call the deadline left no time for is
    `not_called`, never counted as a revive; one cut short by it was made, and `failed`.
    """
    started: set[int] = set()

    def call(index: int, channel: Channel, restart: bool) -> Revival:
        started.add(index)
        result = revive_channel(gateway, channel, restart)
        revive_calls.append(channel.id)
        return result

    tasks = [lambda i=i, c=c, r=r: call(i, c, r) for i, (c, r) in enumerate(jobs)]
    results = run_bounded(tasks, workers, budget_end)
    return [r if isinstance(r, Revival) else
            Revival("failed", "deadline: the call did not finish within HEALTHCHECK_DEADLINE")
            if i in started else
            Revival("not_called", "deadline: no time left in HEALTHCHECK_DEADLINE for this call; "
                                  "it was not made")
            for i, r in enumerate(results)]


def revive_channel(gateway, channel: Channel, restart: bool = False) -> Revival:
    """Ask the gateway to revive one channel; never raises for a gateway failure."""
    try:
        return gateway.revive(channel, restart)
    except HealthcheckError as exc:
        return Revival("failed", str(exc))


def verify_revivals(gateway, revived: list[Channel], wait: float, budget_end: float,
                    report: Report, relisted: Optional[dict] = None) -> dict[str, str]:
    """Wait, list again, and return reconnected/still_down for each revived channel.

    `relisted`, when given, receives each revived channel as the second listing shows it.
    """
    if wait <= 0:
        return {}
    # Leave room for the second list call inside the budget; skip the check rather than overrun.
    room = budget_end - time.monotonic() - min(gateway.settings.list_timeout, 5.0)
    if room < wait:
        report.notes.append((WARNING, "kicks not verified: not enough time left in "
                                      "HEALTHCHECK_DEADLINE for HEALTHCHECK_VERIFY_SECONDS"))
        return {}
    time.sleep(wait)
    try:
        listing = list_channels(gateway)
    except HealthcheckError as exc:
        report.notes.append((WARNING, f"kicks not verified: {exc}"))
        return {}
    connected = {c.id for c in listing.channels if c.connected}
    if relisted is not None:
        wanted = {c.id for c in revived}
        relisted.update((c.id, c) for c in listing.channels if c.id in wanted)
    return {c.id: "reconnected" if c.id in connected else "still_down" for c in revived}


def read_silences(settings: Settings, run: RunContext, previous: dict, listing: Listing,
                  now: datetime, report: Report) -> tuple[dict, dict]:
    """Read the activity source; return the history to keep and each silent channel's silence.

    A source that cannot be read is a problem of the run (UNKNOWN); the history is then kept
    as it was and no channel is judged silent.
    """
    if not settings.activity:
        return previous, {}
    from .database import read_activity  # SQLAlchemy and the reader: only with a source
    try:
        activity = read_activity(settings.activity, previous,
                                 {channel_key(c.id) for c in listing.channels},
                                 now.timestamp(), run.budget_end, report,
                                 expected=settings.expected_channels, redact=settings.redact)
    except HealthcheckError as exc:
        report.activity_read, report.activity_error = False, str(exc)
        report.problems.append((UNKNOWN, str(exc)))
        return previous, {}
    report.activity_read = True
    silences = {}
    for channel in listing.channels:
        silence = assess_silence(activity["channels"].get(channel_key(channel.id)),
                                 now.timestamp(), settings.activity.ceiling_hours(channel.id),
                                 settings.activity.silent_min_minutes)
        if silence:
            silences[channel.id] = silence
    return activity, silences


@dataclass
class Followup:
    """What the run's findings call for across runs: incidents, flapping and one alert."""

    incidents: dict
    flaps: dict
    alert: Optional[dict]


def plan_followup(settings: Settings, run: RunContext, state: dict, report: Report,
                  now: datetime) -> Followup:
    """Plan the incidents, the flapping and the alert they call for; note them in the report."""
    policy = AlertPolicy(settings.alert_after, settings.alert_repeat_hours)
    incidents, items, incident_notes = plan_incidents(state["incidents"], report, now, policy)
    report.notes.extend(incident_notes)
    flaps, flap_items, flap_notes = plan_flaps(
        state.get("flaps"), repaired_drops(state["incidents"], report, now), now,
        settings.flap_drops)
    items += flap_items
    report.notes.extend(flap_notes)
    report.incidents = {key: {k: incident.get(k) for k in ("since", "runs_down", "kicks",
                                                          "last_outcome", "alerted_at")}
                        for key, incident in incidents.items()}
    alert = compose_alert(items, report.state, _hostname(), run.run_id, now) if items else None
    if alert is not None:
        where = ", ".join(settings.alert_destinations) or \
            "nowhere: no alert destination is configured, this log is the only record"
        level = OK if alert["state"] == "RESOLVED" else max(report.state, WARNING)
        report.notes.append((level, f"alert to {where}: " + alert["text"].replace("\n", " / ")))
    return Followup(incidents, flaps, alert)


def record(settings: Settings, run: RunContext, state: dict, report: Report,
           followup: Followup, pending: list, activity: Optional[dict], warnings: list[str],
           now: datetime) -> None:
    """Write the state for the next run, then the metrics; a failed write is a problem."""
    remembered = remembered_channels(state.get("last_seen"), report, now) \
        if settings.metrics_file else None
    try:
        new_state = {"version": STATE_VERSION, "updated_at": now.isoformat(timespec="seconds"),
                     "incidents": followup.incidents, "pending_alerts": pending,
                     "warned": [_digest(text) for text in warnings]}
        report.elapsed = time.monotonic() - run.started
        new_state["last_run"] = last_run_record(report, run.run_id, run.clock())
        if activity is not None:
            new_state["activity"] = activity
        if followup.flaps:
            new_state["flaps"] = followup.flaps
        if remembered is not None:
            new_state["last_seen"] = remembered
        capped = run.effects.save_state(settings.state_path, new_state, settings.redact)
        if capped:
            report.notes.append((WARNING, capped))
    except OSError as exc:
        report.problems.append((UNKNOWN, f"cannot write the state file {settings.state_path} "
                                         f"({exc.strerror or type(exc).__name__}): incidents and "
                                         f"alerts are not tracked; check the folder's "
                                         f"permissions or HEALTHCHECK_STATE_FILE"))
    if settings.metrics_file:
        report.elapsed = time.monotonic() - run.started
        try:
            run.effects.write_metrics(settings.metrics_file,
                                      metrics_text(report, followup.incidents, now, remembered,
                                                   settings.metrics_max_channels))
        except OSError as exc:
            report.problems.append((UNKNOWN, f"cannot write the metrics file "
                                             f"{settings.metrics_file} "
                                             f"({exc.strerror or type(exc).__name__}): check "
                                             f"its folder or HEALTHCHECK_METRICS_FILE"))


def send_end_ping(settings: Settings, run: RunContext, report: Report, incidents: dict,
                  start_ping: StartPing) -> None:
    """Close the dead man's switch: success, or /fail; a failed ping is a note."""
    ping_error = start_ping.outcome()
    if ping_error:
        report.notes.append((WARNING, ping_error))
    # healthchecks.io: the plain URL means success, /fail means the check failed. An incident
    # that has reached a person and is still open fails the check too, so the ping alone is
    # enough to hear of a channel that stays down.
    still_open = any(i.get("alerted_at") for i in incidents.values())
    body = "\n".join(settings.redact(text) for _, text in report.lines())
    ping_error = run.effects.ping(settings, "" if report.state <= WARNING and not still_open
                                  else "/fail", body[:10000],
                                  min(time.monotonic() + ping_slice(settings.deadline),
                                      run.hard_end), run.ping_rid)
    if ping_error:
        report.notes.append((WARNING, ping_error))


def interrupted_report(settings: Settings, run: RunContext, signal_name: str) -> Report:
    """Report a run stopped by a signal: what it had already done, and the /fail ping."""
    # The state file is only ever replaced whole, at the end: it stays as it was.
    done = list(run.revive_calls)
    made = (f"reconnect calls already made for {', '.join(quote_untrusted(c, 60) for c in done)}"
            if done else "no reconnect call had been made yet")
    report = Report(error=f"run interrupted by {signal_name} before it finished ({made}); "
                          f"the state file was left as it was", error_state=UNKNOWN,
                    dry_run=run.dry_run)
    # The supervisor that sent the signal may kill us next: at most 2 s for the ping.
    error = run.effects.ping(settings, "/fail", report.lines()[0][1], time.monotonic() + 2,
                             run.ping_rid)
    if error:
        report.notes.append((WARNING, error))
    return report


def bug_report(dry_run: bool, redact: Callable[[str], str],
               gateway_failed: bool = False) -> Report:
    """Report the exception being handled as a bug: one line here, its traceback for the log.

    `redact` masks the run's secrets in the exception's text before it is cut.
    """
    import traceback
    kind, error, _ = sys.exc_info()
    name = getattr(kind, "__name__", "Exception")
    said = quote_untrusted(str(error), 120, redact)
    report = Report(error=f"internal error ({name}: {said}): this is a bug in {PROGRAM}; the "
                          f"traceback is in the log, please report it", error_state=UNKNOWN,
                    dry_run=dry_run,
                    gateway_failed=gateway_failed)
    report.traceback = traceback.format_exc()
    return report


def _digest(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
