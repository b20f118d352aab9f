"""Evolution API v2: instances, connection state, connect and restart."""

from typing import Optional

from ..bounded import run_bounded
from ..constants import CRITICAL
from ..errors import HealthcheckError
from ..model import Channel, Listing, Revival
from ..text import clean_text
from .base import Abilities, Gateway, every_read_failed, unread_channel
from .http import Answer, channel_path, checked_id, entries_in_time, json_answer

#: Baileys close codes after which Evolution wipes the stored login (408 from 2.4.0 on).
EVOLUTION_LOGOUT_CODES = frozenset({401, 402, 403, 406, 408})
EVOLUTION_CONDITIONS = {"open": "connected", "connecting": "transient", "close": "stopped"}
#: The status shown for an instance connectionState gives no state for (not in memory).
EVOLUTION_NOT_LOADED = "(not loaded)"


#: What an instance that the running Evolution process has not loaded needs.
EVOLUTION_RESTART_ADVICE = ("connect refused with [object Object]: this Evolution process has "
                            "not loaded the instance, so no connect can revive it; restart the "
                            "Evolution process (it loads every instance and connects those "
                            "whose stored state is open or connecting); connect calls back "
                            "off meanwhile")


class EvolutionGateway(Gateway):
    """Evolution API v2: apikey; fetchInstances, then each instance's live connectionState.

    `close` is revived with GET /instance/connect (the stored creds), a dead `open` with POST
    /instance/restart. Never logout or delete.
    """

    abilities = Abilities(revive_transient=True, restart_connected=True,
                          reconnect_loop_words=frozenset({"close", "connecting"}))
    KEY_REFUSED = ("Evolution API refused the key; check HEALTHCHECK_GATEWAY_KEY (its global "
                   "AUTHENTICATION_API_KEY, not an instance's token)")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"apikey": key}

    def _json(self, answer: "Answer", what: str):
        """Evolution's JSON, with its two ways of failing that look like success named."""
        if answer.status == 503 and b"LICENSE_REQUIRED" in answer.body[:4096]:
            raise HealthcheckError(f"{what}: HTTP 503 LICENSE_REQUIRED: this Evolution API 2.4 "
                                   f"is not activated, so it refuses every call; activate its "
                                   f"license (its /manager page) and check again", CRITICAL)
        return json_answer(answer, what)

    def list_sessions(self) -> "Listing":
        # The rows are the database's copy, which lags: each instance's state is read live.
        rows = self._json(self.http.list_call("GET", "/instance/fetchInstances"),
                          "listing instances")
        if not isinstance(rows, list):
            raise HealthcheckError("listing instances: the answer is not a list of instances; "
                                   "check HEALTHCHECK_GATEWAY_URL and the Evolution API version")
        problems, named, seen = [], [], set()
        for position, row in entries_in_time(rows, self.budget_end, "listing instances"):
            name = checked_id(row, "name", position, problems, self.http.origin)
            if name is not None and name not in seen:
                seen.add(name)
                named.append((name, row))
        states = run_bounded([lambda n=n: self._live_state(n) for n, _ in named],
                             self.settings.workers, self.budget_end)
        channels = []
        for (name, row), (state, error) in zip(named, [s or (None, "no time left") for s in
                                                        states]):
            if error:
                channels.append(unread_channel(name, "state", error))
                continue
            code = row.get("disconnectionReasonCode")
            condition = EVOLUTION_CONDITIONS.get(state, "stopped")
            detail = ""
            if state == "connecting" and row.get("connectionStatus") == "connecting":
                # The database is set to connecting each time a QR is generated; a plain
                # reconnect leaves it at open.
                condition, detail = "needs_person", "a QR code is waiting to be scanned"
            if state == "close" and code in EVOLUTION_LOGOUT_CODES:
                condition = "needs_person"
                detail = (f"closed with code {code}: Evolution wiped the stored login, a person "
                          f"must scan a new QR")
            channels.append(Channel(name, state or "(none)", condition, detail))
        return Listing(every_read_failed(channels, "instance"), problems)

    def _live_state(self, name: str) -> tuple[Optional[str], Optional[str]]:
        """Return (the instance's in-memory state word, None), or (None, the error text)."""
        try:
            data = self._json(self.http.session_call(
                "GET", f"/instance/connectionState/{channel_path(name)}"), "reading its state")
        except HealthcheckError as exc:
            return None, str(exc)
        instance = data.get("instance") if isinstance(data, dict) else None
        state = instance.get("state") if isinstance(instance, dict) else None
        # Listed in the database but not loaded in memory: stopped; a connect tells whether
        # this process can connect it at all.
        return (clean_text(state.strip().lower())[:40] if isinstance(state, str)
                else EVOLUTION_NOT_LOADED), None

    def revive(self, channel: "Channel", restart: bool = False) -> "Revival":
        name = channel_path(channel.id)
        # A dead open or a reconnect that never ends is restarted; anything else (closed, or
        # a QR waiting) is asked to connect, which only shows the QR when one is up.
        if restart or channel.status == "open" or (channel.status == "connecting"
                                                   and channel.condition == "transient"):
            answer, what = self.http.session_call("POST", f"/instance/restart/{name}"), "restart"
        else:
            answer, what = self.http.session_call("GET", f"/instance/connect/{name}"), "connect"
        try:
            data = self._json(answer, f"{what} call")
        except HealthcheckError as exc:
            return Revival("failed", str(exc))
        if isinstance(data, dict) and data.get("error") is True:
            if what == "connect" and data.get("message") == "[object Object]":
                # The instance is in the database, but this process never loaded it (created
                # or restored after it started): connect has no socket to open, every time.
                return Revival("restart_gateway", EVOLUTION_RESTART_ADVICE)
            # Evolution reports these failures with HTTP 200.
            said = self.http.origin.quote(data.get("message") or "no reason")
            return Revival("failed", f"{what} call refused (HTTP 200 with an error): {said}")
        if isinstance(data, dict) and any(isinstance(data.get(k), str) and data[k].strip()
                                          for k in ("base64", "code", "pairingCode")):
            return Revival("qr_issued", "the stored login is no longer valid: a person must "
                                        "scan a new QR code in the Evolution manager")
        instance = data.get("instance") if isinstance(data, dict) else None
        if what == "connect" and isinstance(instance, dict) and instance.get("state") == "open":
            return Revival("already_connected", "Evolution answered the connect as open")
        return Revival("reconnect_requested", f"{what} requested: Evolution reconnects the "
                                              f"instance from its stored login")
