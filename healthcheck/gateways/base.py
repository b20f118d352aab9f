"""The interface every gateway client implements."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

from ..constants import CRITICAL
from ..errors import HealthcheckError
from ..model import Channel, Listing, Revival
from ..settings import Settings
from ..text import _plural, quote_untrusted
from .http import Answer, HttpClient


@dataclass(frozen=True)
class Abilities:
    """What a gateway's revive call can do, as plain data for the decision step."""

    #: A session that is starting or reconnecting may be revived once its grace is over.
    revive_transient: bool
    #: A connected session can be restarted without losing its login (for a silent one).
    restart_connected: bool
    #: The words that mean a lost login when a session's own start ends in them (WPPConnect's
    #: CLOSED: a QR was shown and closed unscanned after 60 s; it reads the same as stopped).
    lost_login_after_start: frozenset = frozenset()
    #: The words the gateway's own reconnect loop flips between (Evolution: close and
    #: connecting); an instance seen in both is one transient incident, not a stopped one.
    reconnect_loop_words: frozenset = frozenset()


class Gateway(ABC):
    """The interface of a gateway client, and what every client shares: its HTTP client.

    A client lists the sessions (`list_sessions`, mapping its own words onto conditions) and
    revives one without losing its login (`revive`); `abilities` says what revive can do,
    `KEY_REFUSED` names its own settings when the key is refused, and `BACKEND` words its
    advice (its usual port is its example address's, in constants.GATEWAY_TYPES). A new gateway is one module with one subclass, and one line
    in the registry's CLIENTS table (gateways/__init__.py).
    """

    abilities = Abilities(revive_transient=True, restart_connected=False)
    #: What a 401 from this gateway asks the operator to check: its own settings, by name.
    KEY_REFUSED = "the gateway refused the key; check HEALTHCHECK_GATEWAY_KEY"
    #: What runs behind the gateway and may be the part failing, named in advice (or None).
    BACKEND: Optional[str] = None

    def __init__(self, settings: "Settings", budget_end: float):
        self.settings = settings
        self.budget_end = budget_end
        self.http = HttpClient(settings, budget_end, self.auth_headers(settings.secret),
                               self.key_refused, self.BACKEND)

    @abstractmethod
    def list_sessions(self) -> Listing:
        """Return every session with its status mapped onto a condition; raise
        HealthcheckError when the gateway cannot be listed (one line: what to check)."""

    @abstractmethod
    def revive(self, channel: Channel, restart: bool = False) -> Revival:
        """Ask the gateway to bring one session back from its stored login, never by a call
        that throws the login away; `restart` for a connected but silent one. Raise
        HealthcheckError for a failed call."""

    def auth_headers(self, key: str) -> dict[str, str]:
        """The headers that carry the key on every call."""
        return {}

    def key_refused(self, answer: "Answer") -> str:
        """Return what to check when this gateway answers 401 (nginx's basic auth aside)."""
        return self.KEY_REFUSED


# Shared by the gateways whose listing reads each session's status in a call of its own.
def unread_channel(name: str, what: str, error: str) -> Channel:
    """A listed session whose own status read failed: neither down nor recovered this run.

    Dropping it would close its incident (a false "resolved") and restart its grace; its
    incident and previous condition are kept instead (see plan_incidents).
    """
    return Channel(name, "(unknown)", "unknown",
                   f"status unknown this run (its incident is kept as it was): its {what} "
                   f"{UNREAD}{error}")


#: Between what could not be read and why, in an unread channel's detail.
UNREAD = "could not be read: "


def every_read_failed(channels: list[Channel], noun: str) -> list[Channel]:
    """Return the channels; raise when every status read failed: the gateway is failing."""
    unread = [c for c in channels if c.condition == "unknown"]
    if unread and len(unread) == len(channels):
        first = unread[0]
        raise HealthcheckError(f"every status read failed ({_plural(len(channels), noun)} "
                               f"listed), so the gateway is failing; the first, "
                               f"{quote_untrusted(first.id, 60)}: "
                               f"{first.detail.split(UNREAD, 1)[1]}", CRITICAL)
    return channels
