"""The plain data a run passes between its steps: channels, revive results, silences."""

from dataclasses import dataclass
from typing import Optional

from .constants import CRITICAL, OK, OUTCOME_STATES


@dataclass(frozen=True)
class Channel:
    """One channel (a session, an instance) as the gateway listed it."""

    id: str
    #: The gateway's own word (the wrapper's trimmed and lower-cased); "" when it gave none.
    status: str
    #: What the word means for the watchdog: connected, transient (starting, reconnecting),
    #: needs_person (a QR, a pairing code, a logged-out device), stopped (revivable from
    #: its stored login) or unknown (its status read failed this run). Empty: connected when
    #: the status says so, stopped otherwise.
    condition: str = ""
    #: What the gateway's answer told beyond the word (a logout code, a dead page).
    detail: str = ""

    def __post_init__(self):
        if not self.condition:
            object.__setattr__(self, "condition",
                               "connected" if self.status == "connected" else "stopped")

    @property
    def connected(self) -> bool:
        return self.condition == "connected"


@dataclass(frozen=True)
class Revival:
    """What a revive call on one channel came to (its `outcome`, and what it said)."""

    outcome: str
    detail: str


@dataclass
class Listing:
    """The channels in a list answer, and what was wrong with the answer itself."""

    channels: list[Channel]
    problems: list[tuple[int, str]]


@dataclass(frozen=True)
class Silence:
    """A connected channel that has stopped receiving: since when, and what it would have had."""

    last_inbound: float  # epoch seconds
    expected: float      # inbound messages its history says it would normally have had by now
    rule: str            # "history" (its own rhythm) or "ceiling" (HEALTHCHECK_SILENT_HOURS)


@dataclass(frozen=True)
class ChannelReport:
    """One channel in the report."""

    id: str
    status: str
    connected: bool
    outcome: Optional[str] = None
    detail: str = ""
    verified: Optional[str] = None  # reconnected | still_down, when the revive was checked
    silence: Optional[Silence] = None
    #: What the plan said (`kick`: revive it; the word stays, --json shows it): none | kick |
    #: restart_silent | alert_silent | wait_qr | wait_grace | alert_stuck | ignored.
    action: str = "none"
    condition: str = ""  # connected | transient | needs_person | stopped
    in_grace: bool = False  # revived by --force inside its starting grace

    @property
    def state(self) -> int:
        if self.action == "ignored":
            return OK
        state = OK if self.outcome is None else OUTCOME_STATES[self.outcome]
        # Whatever a revive call answered, a session that needs a person is critical.
        return CRITICAL if self.condition == "needs_person" else state

    @property
    def down_now(self) -> bool:
        """True unless the channel was connected, came back after its revive, or is ignored."""
        return not self.connected and self.verified != "reconnected" \
            and self.action != "ignored"
