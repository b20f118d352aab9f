"""Incidents across runs, and the alerts they call for (pure)."""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from .constants import (
    ACTIVITY_KEY,
    FLAP_WINDOW,
    GATEWAY_KEY,
    MAX_ALERT_BYTES,
    MAX_ALERT_ITEMS,
    MAX_INCIDENTS,
    OK,
    PERSON_OUTCOMES,
    REVIVE_OUTCOMES,
    STATE_NAMES,
    WARNING,
)
from .plan import LOOP_ADVICE, STUCK_ADVICE
from .report import Report
from .silence import SILENT_ADVICE
from .text import _count, _plural, channel_key, clean_text, quote_untrusted
from .times import _duration, _iso, _parse_time


@dataclass(frozen=True)
class AlertPolicy:
    """When an incident reaches a person."""

    alert_after: int
    repeat_hours: float


def incident_start(incident: dict) -> Optional[datetime]:
    """Return when the trouble began: a silence began at the last inbound message, before the
    run that saw it (which may be hours later)."""
    if incident.get("reason") == "silent":
        last_inbound = _parse_time(incident.get("last_inbound_at"))
        if last_inbound is not None:
            return last_inbound
    return _parse_time(incident.get("since"))


def plan_incidents(previous: dict, report: Report, now: datetime,
                   policy: AlertPolicy) -> tuple[dict, list[dict], list[tuple[int, str]]]:
    """Return the new incident table, the alert items due now and the lines to log.

    Pure: the previous table, this run's report and the time in; nothing is read or written.
    An incident opens when a channel (or the gateway) is first seen down and closes when it is
    seen well again. It reaches a person at once for a QR, after `alert_after` runs otherwise,
    again every `repeat_hours`, and once more when it ends.
    """
    incidents = {k: dict(v) for k, v in previous.items() if isinstance(v, dict)}
    items: list[dict] = []
    notes: list[tuple[int, str]] = []
    stamp = now.isoformat(timespec="seconds")

    def open_or_continue(key: str, status: str, outcome: Optional[str], revived: bool,
                         urgent: bool, reason: str, quiet: bool = False,
                         needs_person: bool = False, **extra) -> None:
        incident = incidents.get(key) or {"since": stamp, "runs_down": 0, "kicks": 0,
                                          "alerted_at": None, "last_alert_at": None}
        incident["runs_down"] = _count(incident.get("runs_down")) + 1
        if incident.get("last_status") != status or not incident.get("status_since"):
            incident["status_since"] = stamp  # a starting session's grace counts from here
        if revived:
            incident["kicks"] = _count(incident.get("kicks")) + 1
            if (outcome in PERSON_OUTCOMES or needs_person) \
                    and incident.get("qr_status") != status:
                # The backoff for what only a person can finish starts here.
                incident.update(qr_since_run=incident["runs_down"], qr_status=status)
            incident.update(last_kick_outcome=outcome, last_kick_run=incident["runs_down"],
                            last_kick_at=stamp)
        incident.update(last_status=status, last_outcome=outcome, reason=reason, **extra)
        incidents[key] = incident
        if quiet:
            return  # inside a grace: reported, not alerted
        last_alert = (_parse_time(incident.get("last_alert_at"))
                      or _parse_time(incident.get("alerted_at")))
        if not incident.get("alerted_at"):
            if urgent or incident["runs_down"] >= policy.alert_after:
                items.append(_alert_item("alert", key, incident))
                incident["alerted_at"] = incident["last_alert_at"] = stamp
        elif last_alert is None:  # a hand-edited time: restart the reminder clock, no flood
            incident["last_alert_at"] = stamp
        elif (policy.repeat_hours > 0
              and (now - last_alert).total_seconds() >= policy.repeat_hours * 3600):
            items.append(_alert_item("reminder", key, incident))
            incident["last_alert_at"] = stamp

    def close(key: str, how: str) -> None:
        incident = incidents.pop(key, None)
        if incident is None:
            return
        since = incident_start(incident)
        revivals = _count(incident.get("kicks"))
        name = {GATEWAY_KEY: "the gateway", ACTIVITY_KEY: "the activity source"}.get(
            key, f"channel {quote_untrusted(key, 80)}")
        notes.append((OK, f"{name} {how} after {_duration(since, now)} "
                          f"({_plural(revivals, 'kick')}, "
                          f"{_plural(_count(incident.get('runs_down')), 'run')} down)"))
        if incident.get("alerted_at"):
            items.append(_alert_item("resolved", key, incident, now=now, how=how))

    if report.gateway_failed:
        open_or_continue(GATEWAY_KEY, "unreachable", None, False, False,
                         quote_untrusted(report.error or "the gateway failed"))
        return incidents, items, notes  # the channels' state is unknown this run
    close(GATEWAY_KEY, "answers again")
    if report.error:  # the run was stopped before the gateway was asked (e.g. the lock)
        return incidents, items, notes
    if report.activity_read is False:
        open_or_continue(ACTIVITY_KEY, "failing", None, False, False,
                         quote_untrusted(report.activity_error or "the activity source failed"))
    else:
        close(ACTIVITY_KEY, "reads again")
    listed = {ACTIVITY_KEY}
    for channel in report.channels:
        listed.add(channel.id)
        if channel.action == "ignored":
            close(channel.id, "is ignored now (HEALTHCHECK_IGNORE_CHANNELS); incident closed")
            continue
        if channel.outcome == "unknown":
            continue  # its read failed: neither down nor recovered, the incident stays as is
        if channel.down_now:
            restart = channel.outcome in ("restart_gateway", "restart_pending")
            person = channel.condition == "needs_person" or restart
            qr = channel.outcome in ("qr_issued", "qr_pending") or person
            reason = "stuck" if channel.outcome == "stuck" else "restart" if restart \
                else "qr" if qr else "down"
            loop = channel.action in ("wait_loop", "alert_loop", "revive_loop")
            open_or_continue(channel.id, channel.status or "(none)", channel.outcome,
                             revived=channel.outcome in REVIVE_OUTCOMES
                             or channel.action == "revive_loop",
                             urgent=channel.outcome in ("qr_issued", "stuck") or person,
                             reason=reason, quiet=channel.outcome == "in_grace"
                             or (channel.in_grace and not qr),
                             needs_person=person, **({"flipping": True} if loop else {}))
        elif channel.silence is not None:
            # Connected is not alive: a person must look at the phone now, not in 30 min.
            open_or_continue(channel.id, channel.status, channel.outcome,
                             revived=channel.outcome in REVIVE_OUTCOMES,
                             urgent=True, reason="silent",
                             last_inbound_at=_iso(channel.silence.last_inbound),
                             expected_inbound=round(channel.silence.expected, 1))
        elif (channel.id in incidents and incidents[channel.id].get("reason") == "silent"
              and report.activity_read is False):
            continue  # the source failed: a silence cannot be seen to end this run
        elif channel.id in incidents:
            if incidents[channel.id].get("reason") == "silent":
                close(channel.id, "receives messages again")
                continue
            if channel.verified == "reconnected":  # down at the start of this run, too
                incident = incidents[channel.id]
                incident["kicks"] = _count(incident.get("kicks")) + 1
                incident["runs_down"] = _count(incident.get("runs_down")) + 1
            close(channel.id, "reconnected" if channel.verified else "recovered")
        elif channel.verified == "reconnected":
            notes.append((OK, f"channel {quote_untrusted(channel.id, 80)} reconnected after "
                              f"its kick"))
    for name in report.missing_expected:
        listed.add(name)
        open_or_continue(name, "missing", None, False, False, "missing")
    gone = [k for k in incidents if k != GATEWAY_KEY and k not in listed]
    # An expected channel's "missing" incident is keyed by its name as the settings write it
    # (channel_key): listed again under another spelling ("Imob Sites"), it is back, not gone.
    # The names are worked out only then: for 200,000 channels they take a noticeable time.
    listed_names = {channel_key(c.id) for c in report.channels} \
        if any(incidents[k].get("reason") == "missing" for k in gone) else set()
    for key in gone:
        if report.channels or report.missing_expected:
            back = incidents[key].get("reason") == "missing" and key in listed_names
            close(key, "is listed again" if back else "is no longer listed; incident closed")
    channel_keys = [k for k in incidents if k not in (GATEWAY_KEY, ACTIVITY_KEY)]
    if len(channel_keys) > MAX_INCIDENTS:
        # Keep the oldest: a flood of new ids must not push out the incidents people know of.
        dropped = sorted(channel_keys, key=lambda k: str(incidents[k].get("since")))[
            MAX_INCIDENTS:]
        for key in dropped:
            del incidents[key]
        notes.append((WARNING, f"{len(dropped)} channels down are not tracked across runs: over "
                               f"{MAX_INCIDENTS} incidents are open"))
    return incidents, items, notes


#: What a person checks for a channel that keeps dropping and coming back.
FLAP_ADVICE = ("the phone behind it (its network, a battery saver, WhatsApp open elsewhere) "
               "and the gateway's log around the drops")


def repaired_drops(previous: dict, report: Report, now: datetime) -> dict[str, str]:
    """Return the channels whose drop was repaired in this run, each with when the drop began.

    Pure. A drop is repaired when a channel that was down (not waiting for a person, not
    silent) is connected again: back after this run's revive, or its incident ends now.
    """
    stamp = now.isoformat(timespec="seconds")
    drops = {}
    for channel in report.channels:
        incident = previous.get(channel.id)
        incident = incident if isinstance(incident, dict) else None
        if channel.action == "ignored" or (incident or {}).get("reason", "down") not in (
                "down", "stuck"):
            continue
        if channel.verified == "reconnected" or (channel.connected and incident is not None):
            began = (incident or {}).get("since")
            drops[channel.id] = began if _parse_time(began) else stamp
    return drops


def plan_flaps(previous: dict, drops: dict[str, str], now: datetime,
               threshold: int) -> tuple[dict, list[dict], list[tuple[int, str]]]:
    """Return the drop history to keep, the flapping alerts due now and the lines to log.

    Pure. Each channel keeps when its last `threshold` repaired drops began (so the state stays
    small), a count and the first of them; `threshold` drops within FLAP_WINDOW make it
    flapping: one alert, a reminder at most once a FLAP_WINDOW while the drops go on, and a
    resolved message after a FLAP_WINDOW without one. A channel that is not flapping and has
    had no drop for a FLAP_WINDOW is forgotten.
    """
    if threshold <= 0:
        return {}, [], []
    stamp = now.isoformat(timespec="seconds")
    flaps: dict[str, dict] = {}
    items: list[dict] = []
    notes: list[tuple[int, str]] = []
    previous = previous if isinstance(previous, dict) else {}
    for key in sorted(set(previous) | set(drops)):
        entry = previous.get(key) if isinstance(previous.get(key), dict) else {}
        kept = entry.get("drops") if isinstance(entry.get("drops"), list) else []
        times = {t for t in kept if _parse_time(t) is not None}
        count = _count(entry.get("count"))
        if key in drops and drops[key] not in times:
            times.add(drops[key])
            count += 1
        ordered = sorted(times, key=_parse_time)[-threshold:]
        if not ordered:
            continue
        recent = [t for t in ordered if now - _parse_time(t) < FLAP_WINDOW]
        first = entry.get("first") if _parse_time(entry.get("first")) else ordered[0]
        new = {"drops": ordered, "count": max(count, len(ordered)), "first": first}
        item = {"subject": "channel", "id": key, "reason": "flapping", "since": first,
                "drops": new["count"], "last_drop_at": ordered[-1]}
        alerted = _parse_time(entry.get("alerted_at"))
        if alerted is not None:
            if not recent:
                items.append({"kind": "resolved", **item})
                notes.append((OK, f"channel {quote_untrusted(key, 80)} stopped dropping: no "
                                  f"drop since {ordered[-1]} ({_plural(new['count'], 'drop')} "
                                  f"since {first})"))
                continue
            last_alert = _parse_time(entry.get("last_alert_at")) or alerted
            new.update(alerted_at=entry["alerted_at"],
                       last_alert_at=last_alert.isoformat(timespec="seconds"))
            if now - last_alert >= FLAP_WINDOW:
                items.append({"kind": "reminder", **item})
                new["last_alert_at"] = stamp
        elif len(recent) >= threshold:
            items.append({"kind": "alert", **item})
            new.update(alerted_at=stamp, last_alert_at=stamp)
        elif not recent:
            continue
        flaps[key] = new
    if len(flaps) > MAX_INCIDENTS:  # a flood of new ids must not push out the alerted ones
        keep = sorted(flaps, key=lambda k: (not flaps[k].get("alerted_at"),
                                            flaps[k]["drops"][-1]))[:MAX_INCIDENTS]
        flaps = {k: flaps[k] for k in sorted(keep)}
    return flaps, items, notes


def count_unfinished_run(incidents: dict, unfinished: str, now: datetime) -> tuple[dict, str]:
    """Return the incidents with a killed run counted as a failed run of the gateway, and why.

    Pure. The killed run is the gateway's failure as far as anyone can tell (a hung gateway is
    what makes a supervisor kill a check): it opens or extends the gateway's incident.
    """
    started = re.search(r"started=(\S+)", unfinished)
    when = started.group(1) if started else "an unknown time"
    why = (f"the previous run (started at {quote_untrusted(when, 40)}) did not finish: it was "
           f"killed from outside (a supervisor's timeout, the OOM killer, a reboot); under "
           f"Nagios or Monit, give the script -t SECONDS below their timeout")
    incidents = {k: dict(v) for k, v in incidents.items() if isinstance(v, dict)}
    incident = incidents.setdefault(GATEWAY_KEY, {
        "since": now.isoformat(timespec="seconds"), "runs_down": 0, "kicks": 0,
        "alerted_at": None, "last_alert_at": None, "last_status": "unfinished run",
        "last_outcome": None, "reason": why})
    incident["runs_down"] = _count(incident.get("runs_down")) + 1
    return incidents, why


def _alert_item(kind: str, key: str, incident: dict, now: Optional[datetime] = None,
                how: str = "") -> dict:
    item = {"kind": kind, "subject": "gateway" if key == GATEWAY_KEY else "channel",
            "id": None if key == GATEWAY_KEY else key, "reason": incident.get("reason"),
            "since": incident.get("since"), "runs_down": incident.get("runs_down"),
            "kicks": incident.get("kicks"), "status": incident.get("last_status"),
            "outcome": incident.get("last_outcome")}
    if key == ACTIVITY_KEY:
        item.update(subject="activity", id=None)
    if incident.get("flipping"):
        item["flipping"] = True
    if incident.get("reason") == "silent":
        item.update(last_inbound_at=incident.get("last_inbound_at"),
                    expected_inbound=incident.get("expected_inbound"))
    if now is not None:
        item["lasted"] = _duration(incident_start(incident), now)
        item["how"] = how
    return item


def compose_alert(items: list[dict], state: int, host: str, run_id: str, now: datetime) -> dict:
    """Return one message for all the alert items of a run: text for people, fields for tools."""
    def describe(item: dict) -> str:
        since = item.get("since") or "?"
        counts = (f"since {since}, {_plural(_count(item.get('runs_down')), 'run')}, "
                  f"{_plural(_count(item.get('kicks')), 'kick')}")
        if item["subject"] == "gateway":
            if item["kind"] == "resolved":
                return f"the gateway answers again (was down {item.get('lasted')})"
            return f"the gateway is failing ({counts}): {item.get('reason')}"
        if item["subject"] == "activity":
            if item["kind"] == "resolved":
                return f"the activity source reads again (was failing {item.get('lasted')})"
            return (f"the activity source keeps failing, so silent channels cannot be seen "
                    f"({counts}): {item.get('reason')}")
        name = quote_untrusted(item["id"], 80)
        if item.get("reason") == "flapping":
            if item["kind"] == "resolved":
                return (f"{name}: no drop for 24 h, it stopped dropping "
                        f"({_plural(_count(item.get('drops')), 'drop')} since {since})")
            return (f"{name}: keeps dropping: {_count(item.get('drops'))} times since {since}, "
                    f"last at {item.get('last_drop_at') or '?'}; each drop was repaired, but "
                    f"something keeps cutting it: {FLAP_ADVICE}")
        if item["kind"] == "resolved":
            return f"{name}: {item.get('how')} (was down {item.get('lasted')}, " \
                   f"{_plural(_count(item.get('kicks')), 'kick')})"
        if item.get("reason") == "qr":
            return f"{name}: a person must scan a new QR code in the panel now ({counts})"
        if item.get("reason") == "missing":
            return f"{name}: missing from the gateway's list ({counts})"
        if item.get("reason") == "restart":
            return (f"{name}: the gateway's process has not loaded it, so no connect can revive "
                    f"it: restart the Evolution process ({counts})")
        if item.get("reason") == "stuck" and item.get("flipping"):
            return (f"{name}: flips between close and connecting: {LOOP_ADVICE} "
                    f"({counts})")
        if item.get("reason") == "stuck":
            return (f"{name}: stuck {quote_untrusted(item.get('status') or '?', 40)}: the "
                    f"gateway's own start never finished; {STUCK_ADVICE} ({counts})")
        if item.get("reason") == "silent":
            expected = item.get("expected_inbound")
            normally = (f", where it would normally have had about {expected:.0f}"
                        if isinstance(expected, (int, float)) and expected >= 1 else "")
            return (f"{name}: connected but silent: no inbound message since "
                    f"{item.get('last_inbound_at') or '?'}{normally}. {SILENT_ADVICE} "
                    f"(since {since}, {_plural(_count(item.get('runs_down')), 'run')})")
        return (f"{name}: still not connected, status "
                f"{quote_untrusted(item.get('status') or '(none)', 40)}, last kick "
                f"{item.get('outcome')} ({counts})")

    open_items = [i for i in items if i["kind"] != "resolved"]
    resolved = [i for i in items if i["kind"] == "resolved"]
    # An open item is at least a warning, also in a run that is OK (a flapping channel).
    level = STATE_NAMES[max(state, WARNING)] if open_items else "RESOLVED"
    total = len(items)
    # Bounded whatever the gateway sends: at most MAX_ALERT_ITEMS described, 64 KB in all.
    open_items, resolved = open_items[:MAX_ALERT_ITEMS], resolved[:MAX_ALERT_ITEMS // 4]
    while True:
        # The line breaks are the message's own layout; everything put into a line is cleaned
        # there, so no id, status or reason can break a line and forge another one.
        lines = [f"WhatsApp sessions {level} on {clean_text(host)}:"]
        lines += [f"- {clean_text(describe(i))}{' (reminder)' if i['kind'] == 'reminder' else ''}"
                  for i in open_items]
        if resolved:
            lines.append("Resolved:")
            lines += [f"- {clean_text(describe(i))}" for i in resolved]
        shown = open_items + resolved
        if len(shown) < total:
            lines.append(f"... and {total - len(shown)} more (see the log)")
        message = {"text": "\n".join(lines), "state": level, "host": host, "run_id": run_id,
                   "sent_at": now.isoformat(timespec="seconds"), "items": shown,
                   "more_items": total - len(shown)}
        if len(json.dumps(message)) <= MAX_ALERT_BYTES or len(shown) <= 1:
            return message
        open_items, resolved = open_items[:len(open_items) // 2], resolved[:len(resolved) // 2]
