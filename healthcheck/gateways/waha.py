"""WAHA (devlikeapro/waha): sessions listed with all=true, revived with restart."""

from typing import Optional

from ..bounded import run_bounded
from ..errors import HealthcheckError
from ..model import Channel, Listing, Revival
from ..text import clean_text
from .base import Abilities, Gateway
from .http import channel_path, checked_id, describe_http_failure, entries_in_time, json_answer

#: WAHA's session statuses (src/structures/enums.dto.ts). FAILED is restarted: a logged-out
#: session comes back as SCAN_QR_CODE, which then goes to a person.
WAHA_CONDITIONS = {"WORKING": "connected", "STARTING": "transient",
                   "SCAN_QR_CODE": "needs_person", "STOPPED": "stopped", "FAILED": "stopped"}


class WahaGateway(Gateway):
    """WAHA: X-Api-Key; GET /api/sessions?all=true; POST /api/sessions/{name}/restart.

    Never /start (Core answers 422 on FAILED), never logout, DELETE or /api/server/stop.
    """

    abilities = Abilities(revive_transient=True, restart_connected=True)
    KEY_REFUSED = ("WAHA refused the key; check HEALTHCHECK_GATEWAY_KEY (WAHA's WAHA_API_KEY; a "
                   "WAHA started without one makes a key at boot and prints it in its log)")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"X-Api-Key": key}

    def list_sessions(self) -> "Listing":
        # all=true: without it a STOPPED session is not listed at all.
        data = json_answer(self.http.list_call("GET", "/api/sessions?all=true"),
                           "listing sessions")
        if not isinstance(data, list):
            raise HealthcheckError("listing sessions: the answer is not a list of sessions; "
                                   "check HEALTHCHECK_GATEWAY_URL and the WAHA version")
        channels, problems = [], []
        for position, entry in entries_in_time(data, self.budget_end, "listing sessions"):
            name = checked_id(entry, "name", position, problems, self.http.origin)
            if name is None:
                continue
            word = entry.get("status") if isinstance(entry.get("status"), str) else ""
            word = clean_text(word.strip().upper())[:40]
            condition = WAHA_CONDITIONS.get(word, "stopped")
            detail = ("FAILED: restarted; if it fails again after the restart, its login is "
                      "gone and a person must scan a new QR" if word == "FAILED" else "")
            channels.append(Channel(name, word or "(none)", condition, detail))
        # WORKING is set by events and cached; the engine's own state is fresher (WEBJS's page
        # state, GOWS's socket). Read it for each WORKING session, at most WORKERS at a time.
        working = [c for c in channels if c.condition == "connected"]
        engines = run_bounded([lambda c=c: self._engine_trouble(c.id) for c in working],
                              self.settings.workers, self.budget_end)
        dead = {c.id: why for c, why in zip(working, engines) if why}
        channels = [Channel(c.id, c.status, "stopped", f"WORKING, but {dead[c.id]}: restarted")
                    if c.id in dead else c for c in channels]
        return Listing(channels, problems)

    def _engine_trouble(self, name: str) -> Optional[str]:
        """Return what the engine says is wrong with a WORKING session, None when nothing is.

        An answer that cannot be read says nothing: the session is left as WORKING.
        """
        try:
            data = self.http.session_call("GET", f"/api/sessions/{channel_path(name)}").json()
        except (HealthcheckError, ValueError):
            return None
        engine = data.get("engine") if isinstance(data, dict) else None
        if not isinstance(engine, dict):
            return None
        state = engine.get("state")
        if engine.get("engine") == "WEBJS" and isinstance(state, str) and state != "CONNECTED":
            return f"its WEBJS page says {self.http.origin.quote(state, 20)}"
        gows = engine.get("gows")
        if engine.get("engine") == "GOWS" and isinstance(gows, dict) \
                and gows.get("connected") is False:
            return "its GOWS engine says it is not connected"
        return None

    def revive(self, channel: "Channel", restart: bool = False) -> "Revival":
        answer = self.http.session_call("POST", f"/api/sessions/{channel_path(channel.id)}"
                                                f"/restart")
        if not 200 <= answer.status < 300:
            return Revival("failed", describe_http_failure(answer, "restart call"))
        try:
            data = answer.json()
        except ValueError:
            data = None
        word = str(data.get("status", "")).upper() if isinstance(data, dict) else ""
        if word == "SCAN_QR_CODE":
            return Revival("qr_issued", "the stored login is no longer valid: a person must "
                                        "scan a new QR code (WAHA dashboard or GET "
                                        "/api/{session}/auth/qr)")
        if word == "WORKING":
            return Revival("already_connected", "WAHA answered the restart as WORKING")
        return Revival("reconnect_requested", "restart requested: WAHA restarts the session from "
                                              "its stored login")
