"""What to do with each listed channel this run (pure)."""

import dataclasses
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from .constants import (
    CRITICAL,
    DEFAULT_QR_RETRY_HOURS,
    DEFAULT_STARTING_GRACE_MINUTES,
    PERSON_OUTCOMES,
    UNKNOWN,
    WPPCONNECT_LOGIN_GONE,
)
from .model import Channel, Listing, Revival, Silence
from .text import _count, channel_key, quote_untrusted
from .times import _parse_time


def is_ignored(name: str, patterns: Sequence[str]) -> bool:
    """True when a channel matches HEALTHCHECK_IGNORE_CHANNELS (names or shell-style patterns)."""
    key = channel_key(name)
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _is_power_of_two(number: int) -> bool:
    return number > 0 and number & (number - 1) == 0


@dataclass(frozen=True)
class ChannelPlan:
    """What this run does with one listed channel, decided before any call is made."""

    channel: Channel
    #: none | kick (revive it) | restart_silent | alert_silent | wait_qr | wait_grace | ...
    action: str
    detail: str = ""
    silence: Optional[Silence] = None
    #: Revived (--force) while still inside its starting grace: reported, not yet alerted.
    in_grace: bool = False


@dataclass
class Plan:
    """The run's decisions: one entry per listed channel, and what the list itself shows."""

    channels: list[ChannelPlan]
    problems: list[tuple[int, str]]
    missing: list[str]

    @property
    def revivals(self) -> list[tuple[Channel, bool]]:
        """The channels to revive, each with whether it is a restart of a connected one."""
        return [(p.channel, p.action == "restart_silent") for p in self.channels
                if p.action in ("kick", "restart_silent", "revive_loop")]


def revive_due(incident: Optional[dict], status: str, now: datetime,
               retry_hours: float, needs_person: bool = False) -> tuple[bool, str]:
    """Return whether a channel not connected is revived this run, and why not when it is not.

    A revive that issued a QR started a browser that only a scan can finish: revive again on runs
    2, 4, 8, 16... of the QR phase, then every `retry_hours`, and at once when the status
    changes (something happened on the gateway).
    """
    backing_off = needs_person or (incident or {}).get("last_kick_outcome") in PERSON_OUTCOMES
    if not incident or not backing_off or not incident.get("last_kick_at"):
        return True, ""
    if incident.get("last_status") != (status or "(none)"):
        return True, ""
    base = _count(incident.get("qr_since_run")) or 1
    run = _count(incident.get("runs_down")) + 1 - base + 1
    last_run = _count(incident.get("last_kick_run")) - base + 1
    last_at = _parse_time(incident.get("last_kick_at"))
    if last_at is None or last_run < 1:
        return True, ""
    retry_at = last_at + timedelta(hours=retry_hours)
    if now >= retry_at:
        return True, ""
    doubling = _is_power_of_two(last_run)
    if doubling and _is_power_of_two(run) and run > last_run:
        return True, ""
    when = f"at {retry_at.strftime('%Y-%m-%d %H:%M')}"
    if doubling:
        when = f"on run {2 * last_run + base - 1} of the incident or {when}, whichever is first"
    return False, (f"not kicked this run: it waits for a person (a QR or a pairing code) and "
                   f"only they can finish it; next kick {when} (or now with --force)")


@dataclass(frozen=True)
class PlanPolicy:
    """The settings and the gateway's abilities the plan follows, as plain data."""

    qr_retry_hours: float = DEFAULT_QR_RETRY_HOURS
    starting_grace_minutes: float = DEFAULT_STARTING_GRACE_MINUTES
    revive_transient: bool = True
    restart_silent: bool = False
    #: HEALTHCHECK_IGNORE_CHANNELS, as channel_key patterns.
    ignore: tuple[str, ...] = ()
    lost_login_after_start: frozenset = frozenset()
    reconnect_loop_words: frozenset = frozenset()


def plan_run(listing: Listing, expected: Sequence[str], incidents: dict,
             silences: dict, now: datetime, policy: PlanPolicy, force: bool) -> Plan:
    """Return what to do with each listed channel.

    Pure: the listing, the previous incidents, each connected channel's silence (from the
    activity source) and the time in; the plan out, as data. `--dry-run` prints it and the
    effects section carries it out.
    """
    problems = list(listing.problems)
    listed = {channel_key(c.id) for c in listing.channels}
    missing = [name for name in expected
               if name not in listed and not is_ignored(name, policy.ignore)]
    for name in missing:
        problems.append((CRITICAL, f"expected channel {quote_untrusted(name, 80)} is missing "
                                   f"from the gateway's list: recreate it in the panel"))
    if not listing.channels and not expected:
        problems.append((UNKNOWN, "the gateway lists no channels at all: it may have lost its "
                                  "sessions; set HEALTHCHECK_EXPECTED_CHANNELS to make this "
                                  "critical"))
    return Plan([ChannelPlan(c, "ignored", "in HEALTHCHECK_IGNORE_CHANNELS: never revived "
                                           "nor alerted") if is_ignored(c.id, policy.ignore)
                 else _plan_channel(c, incidents.get(c.id), silences.get(c.id), now, policy,
                                    force)
                 for c in listing.channels], problems, missing)


def _plan_channel(channel: Channel, incident: Optional[dict], silence: Optional[Silence],
                  now: datetime, policy: PlanPolicy, force: bool) -> ChannelPlan:
    """Decide for one channel from its condition; the gateway's name is never asked."""
    if channel.condition == "unknown":
        return ChannelPlan(channel, "unknown", channel.detail)
    if (channel.status in policy.lost_login_after_start and channel.condition == "stopped"
            and (incident or {}).get("last_kick_outcome") in ("start_session_requested",
                                                              "qr_issued")):
        # Its own start (the last revive) ended stopped again: the login is gone, not stopped.
        channel = dataclasses.replace(channel, condition="needs_person",
                                      detail=f"stopped again after its start-session: "
                                             f"{WPPCONNECT_LOGIN_GONE}")
    loop = policy.reconnect_loop_words
    # A QR incident that ends close (Evolution's QR limit) is not a loop: it stays with a person.
    if (incident and channel.status in loop and channel.condition in ("stopped", "transient")
            and incident.get("reason") in ("down", "stuck")
            and (incident.get("flipping") or (incident.get("last_status") in loop
                                              and incident.get("last_status") != channel.status))):
        return _plan_reconnect_loop(channel, incident, now, policy, force)
    if channel.connected:
        if silence is None:
            return ChannelPlan(channel, "none")
        return ChannelPlan(channel, "restart_silent" if policy.restart_silent
                           else "alert_silent", silence=silence)
    if channel.condition == "transient":
        # Do not fight the gateway's own recovery: leave a starting session alone a while.
        since = _parse_time((incident or {}).get("status_since")) \
            if (incident or {}).get("last_status") == channel.status else None
        waited = (now - since).total_seconds() / 60 if since else 0.0
        in_grace = waited < policy.starting_grace_minutes
        if in_grace and force and policy.revive_transient:
            # --force revives now what can be revived; it never shortens the wait before a
            # person is told: the incident stays quiet until the grace is over.
            return ChannelPlan(channel, "kick", in_grace=True)
        if in_grace:
            left = policy.starting_grace_minutes - waited
            return ChannelPlan(channel, "wait_grace", f"the gateway is starting or reconnecting "
                                                      f"it: left alone for its own recovery "
                                                      f"{left:.0f} more min "
                                                      f"(HEALTHCHECK_STARTING_GRACE_MINUTES)")
        if not policy.revive_transient:
            return ChannelPlan(channel, "alert_stuck", f"still {channel.status} after "
                                                       f"{waited:.0f} min, and this gateway has "
                                                       f"no safe way to restart a starting "
                                                       f"session: {STUCK_ADVICE}")
        return ChannelPlan(channel, "kick")
    if force:
        return ChannelPlan(channel, "kick")
    due, why = revive_due(incident, channel.status, now, policy.qr_retry_hours,
                          needs_person=channel.condition == "needs_person")
    if not due and (incident or {}).get("last_kick_outcome") == "restart_gateway":
        return ChannelPlan(channel, "wait_restart", "not connected this run: the gateway's "
                                                    "process must be restarted to load it; "
                                                    + why[why.index("next kick"):])
    return ChannelPlan(channel, "kick" if due else "wait_qr", why)


def _plan_reconnect_loop(channel: Channel, incident: dict, now: datetime, policy: PlanPolicy,
                         force: bool) -> ChannelPlan:
    """Plan for a session the gateway's own reconnect loop flips between two words.

    Each run catches one word or the other, so the word's own grace would restart at every
    flip and a run that catches the stopped word would revive it: the loop is one transient
    incident instead, whose grace counts from its first sighting (the incident's start).
    """
    since = _parse_time(incident.get("since"))
    waited = (now - since).total_seconds() / 60 if since else 0.0
    words = " and ".join(sorted(policy.reconnect_loop_words))
    if waited < policy.starting_grace_minutes:
        if force:
            return ChannelPlan(channel, "kick")
        left = policy.starting_grace_minutes - waited
        return ChannelPlan(channel, "wait_loop", f"it flips between {words}: the gateway's own "
                                                 f"reconnect loop, left alone {left:.0f} more "
                                                 f"min from its first sighting "
                                                 f"(HEALTHCHECK_STARTING_GRACE_MINUTES)")
    last_revive = _parse_time(incident.get("last_kick_at"))
    stuck = f"still flipping between {words} after {waited:.0f} min: {LOOP_ADVICE}"
    if (incident.get("reason") == "stuck" and last_revive is not None and not force
            and now < last_revive + timedelta(hours=policy.qr_retry_hours)):
        return ChannelPlan(channel, "alert_loop", f"{stuck}; revived at "
                                                  f"{last_revive.strftime('%Y-%m-%d %H:%M')}, "
                                                  f"not again before "
                                                  f"HEALTHCHECK_QR_RETRY_HOURS")
    return ChannelPlan(channel, "revive_loop", stuck)


#: What a person does with an instance whose own reconnect never connects (Evolution).
LOOP_ADVICE = ("its own reconnect never connects (a dead connection); revived once past its "
               "grace; check the phone's link and restart the Evolution process")

#: What a person does with a session a gateway keeps starting (WPPConnect's INITIALIZING).
STUCK_ADVICE = ("restart the gateway server process (its sessions start again from their "
                "stored logins) or end that session's browser on the server; the watchdog "
                "never closes a session that is starting")


def after_revive(revival: Revival, seen: Optional[Channel], policy: PlanPolicy) -> Revival:
    """Return what a revive came to, given the status read after it (None: not read).

    A revive's own answer can be from before it (WPPConnect's start-session answers the
    previous status): a session that shows a QR, or is stopped again, after its start needs
    a person now, not in 15 minutes.
    """
    if seen is None or revival.outcome in ("qr_issued", "failed"):
        return revival
    if seen.condition == "needs_person":
        return Revival("qr_issued", f"status {quote_untrusted(seen.status, 40)} after the revive: "
                                    f"{seen.detail or 'a person must scan a new QR code'}")
    if (seen.status in policy.lost_login_after_start and seen.condition == "stopped"
            and revival.outcome == "start_session_requested"):
        return Revival("qr_issued", f"stopped again after its start-session: "
                                    f"{WPPCONNECT_LOGIN_GONE}")
    return revival
