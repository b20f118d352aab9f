"""WPPConnect-Server: tokens minted per session, status, start-session."""

from urllib.parse import quote

from ..bounded import run_bounded
from ..constants import CRITICAL, WPPCONNECT_LOGIN_GONE
from ..errors import HealthcheckError
from ..model import Channel, Listing, Revival
from ..settings import Settings
from ..text import clean_text
from . import http
from .base import Abilities, Gateway, every_read_failed, unread_channel

WPPCONNECT_CONDITIONS = {"CONNECTED": "connected", "INITIALIZING": "transient",
                         "QRCODE": "needs_person", "PHONECODE": "needs_person",
                         "CLOSED": "stopped"}


class WppconnectGateway(Gateway):
    """WPPConnect-Server: the secret lists the names and mints a token per session.

    CLOSED is revived with start-session and the body {} (any other body overwrites the
    session's stored webhook settings); a CONNECTED session whose page is dead is closed and
    started again. Never close an INITIALIZING session: the real server answers 500, leaves
    its Chromium running, and every later start hangs. A lost login reads CLOSED, like a stop:
    CLOSED with the QR it last showed, or CLOSED again after its own start, needs a person.
    Never logout, clear-session-data or /unhealthy.
    """

    abilities = Abilities(revive_transient=False, restart_connected=True,
                          lost_login_after_start=frozenset({"CLOSED"}))
    # A wrong key is a 400 on the listing; a 401 is a session's token, minted with the key.
    KEY_REFUSED = ("the server refused the token minted for this session a moment ago (the key "
                   "itself was accepted); check that no proxy in front of WPPConnect-Server "
                   "drops the Authorization header, then the server's log")

    def __init__(self, settings: "Settings", budget_end: float):
        super().__init__(settings, budget_end)  # the key goes in paths, not in a header
        self._tokens: dict[str, str] = {}  # minted this run, in memory only

    def _secret_path(self) -> str:
        return quote(self.settings.secret, safe="")

    def list_sessions(self) -> "Listing":
        answer = self.http.list_call("GET", f"/api/{self._secret_path()}/show-all-sessions")
        if answer.status == 400 and b"incorrect" in answer.body[:1000]:
            raise HealthcheckError("listing sessions: HTTP 400, the server refused the key "
                                   "(SECRET_KEY); check HEALTHCHECK_GATEWAY_KEY", CRITICAL)
        data = http.json_answer(answer, "listing sessions")
        names = data.get("response") if isinstance(data, dict) else None
        if not isinstance(names, list):
            raise HealthcheckError("listing sessions: the answer holds no session list; check "
                                   "HEALTHCHECK_GATEWAY_URL and the WPPConnect-Server version")
        problems, checked = [], {}  # a dict keeps the order and finds duplicates at once
        for position, value in http.entries_in_time(names, self.budget_end, "listing sessions"):
            name = http.checked_id({"name": value}, "name", position, problems,
                                   self.http.origin)
            if name is not None:
                checked.setdefault(name, None)
        found = run_bounded([lambda n=n: self._state(n) for n in checked],
                            self.settings.workers, self.budget_end)
        channels = []
        for name, state in zip(checked, found):
            channels.append(state if isinstance(state, Channel)
                            else unread_channel(name, "status", state or "no time left"))
        return Listing(every_read_failed(channels, "session"), problems)

    def _token(self, name: str) -> str:
        if name not in self._tokens:
            answer = self.http.session_call(
                "POST", f"/api/{http.channel_path(name)}/{self._secret_path()}/generate-token")
            data = http.json_answer(answer, "minting its token")
            token = data.get("token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise HealthcheckError("minting its token: the answer holds no token")
            # A token is as good as the secret for this session: hidden like it.
            self.settings.redact.add(token)
            self._tokens[name] = token
        return self._tokens[name]

    def _session_call(self, method: str, name: str, action: str, **kwargs) -> "http.Answer":
        return self.http.session_call(method, f"/api/{http.channel_path(name)}/{action}",
                                      headers={"Authorization": f"Bearer {self._token(name)}"},
                                      **kwargs)

    def _state(self, name: str):
        """Return the session as a Channel, or the error text."""
        try:
            data = http.json_answer(self._session_call("GET", name, "status-session"),
                                    "reading its status")
            word = data.get("status") if isinstance(data, dict) else None
            word = clean_text(word.strip().upper())[:40] if isinstance(word, str) else "CLOSED"
            condition = WPPCONNECT_CONDITIONS.get(word, "transient")
            if word == "CLOSED" and any(isinstance(data.get(k), str) and data[k].strip()
                                        for k in ("urlcode", "qrcode")):
                # Only a start whose QR closed unscanned leaves CLOSED with a QR: autoClose
                # cannot reset the entry then (createSessionUtil.ts:113-121); a stop clears it.
                return Channel(name, word, "needs_person", WPPCONNECT_LOGIN_GONE)
            if word != "CONNECTED":
                return Channel(name, word, condition)
            # status-session says CONNECTED even when the browser page has died.
            alive = http.json_answer(
                self._session_call("GET", name, "check-connection-session"), "checking its page")
            if isinstance(alive, dict) and alive.get("status") is True:
                return Channel(name, word, "connected")
            return Channel(name, word, "stopped", "CONNECTED but its page is dead "
                                                  "(check-connection-session says false)")
        except HealthcheckError as exc:
            return str(exc)

    def revive(self, channel: "Channel", restart: bool = False) -> "Revival":
        if channel.status in ("QRCODE", "PHONECODE"):
            # start-session is a no-op in these states: only a person can go on from here.
            return Revival("qr_issued", "a QR code (or a pairing code) is waiting: a person must "
                                        "scan it, with the WhatsApp of that number")
        if channel.status == "INITIALIZING":  # see the class docstring: never close it
            return Revival("failed", "not revived: the session is INITIALIZING, and closing it "
                                     "would leave its browser running for good")
        if channel.status == "CONNECTED":
            # start-session is a no-op while the status is CONNECTED: close it first. A 500
            # here means the client object is gone already; start-session still works.
            closed = self._session_call("POST", channel.id, "close-session")
            if not (200 <= closed.status < 300 or closed.status == 500):
                return Revival("failed",
                               http.describe_http_failure(closed, "close-session call"))
        answer = self._session_call("POST", channel.id, "start-session", json_body={})
        if not 200 <= answer.status < 300:
            return Revival("failed", http.describe_http_failure(answer, "start-session call"))
        if channel.condition == "needs_person":
            return Revival("qr_issued", "start-session requested to show a new QR: "
                                        f"{channel.detail or WPPCONNECT_LOGIN_GONE}")
        # The answer is the status from before the start: the read after it (the verify, or
        # the next run) sees what came of it.
        return Revival("start_session_requested", "start-session requested: the server relaunches "
                                                  "the session from its stored login, if it still "
                                                  "has one (a QR, or CLOSED again, goes to a "
                                                  "person)")
