"""The operator's Node wrapper around WPPConnect (GET /api/channels, /qr, start-session)."""

from typing import Optional

from ..constants import (
    CONNECTED_QR_STATUSES,
    MAX_QUOTE_CHARS,
    QR_IMAGE_FIELDS,
    STARTING_QR_STATUSES,
    WRAPPER_TRANSIENT_STATUSES,
)
from ..errors import HealthcheckError
from ..model import Channel, Listing, Revival
from ..text import _SURROGATES
from .base import Gateway
from .http import (
    Answer,
    channel_path,
    checked_id,
    describe_http_failure,
    entries_in_time,
    json_answer,
)


class WrapperGateway(Gateway):
    """The operator's gateway-wrapper: GET /api/channels, /qr to reconnect, start-session.

    `/qr` on a disconnected session makes WPPConnect reconnect from its stored login; a client
    that is not running is relaunched with start-session. The wrapper has no restart.
    """

    BACKEND = "WPPConnect"  # the wrapper fronts a WPPConnect server
    #: How the other gateways refuse a key, so that a wrapper setting pointed at one of them
    #: (HEALTHCHECK_GATEWAY left unset) says so: (its name, its HEALTHCHECK_GATEWAY, the fields
    #: of its 401 body).
    FOREIGN_REFUSALS = (("a WAHA", "waha", {"statusCode": 401}),
                        ("an Evolution API", "evolution", {"status": 401, "error": "Unauthorized"}))

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"X-Gateway-Secret": key}

    def key_refused(self, answer: "Answer") -> str:
        body = _json_or_none(answer)
        for name, kind, fields in self.FOREIGN_REFUSALS:
            if isinstance(body, dict) and all(body.get(k) == v for k, v in fields.items()):
                return (f"HEALTHCHECK_GATEWAY is wrapper: is this {name} server? It refused "
                        f"the key the way one does, not the way the wrapper does; then set "
                        f"HEALTHCHECK_GATEWAY={kind}, HEALTHCHECK_GATEWAY_URL and "
                        f"HEALTHCHECK_GATEWAY_KEY")
        hint = f"the gateway refused the secret; check {self.settings.key_setting}"
        if self.settings.key_setting == "WPP_GATEWAY_SECRET":  # only the panel encrypts it
            hint += " (and INFRA_SECRET_KEY if the secret is stored encrypted)"
        return hint

    def list_sessions(self) -> "Listing":
        return parse_listing(self.http.list_call("GET", "/api/channels"), self.budget_end)

    def revive(self, channel: "Channel", restart: bool = False) -> "Revival":
        path = f"/api/channels/{channel_path(channel.id)}"
        answer = self.http.session_call("GET", path + "/qr")
        if not is_not_started(answer):
            return classify_qr_answer(answer)
        # /qr alone cannot revive a CLOSED client; start-session relaunches it from its login.
        return classify_start_answer(self.http.session_call("POST", path + "/start-session"))


def parse_listing(answer: Answer, budget_end: float = float("inf")) -> Listing:
    """Return the channels of a GET /api/channels answer, or raise HealthcheckError."""
    data = json_answer(answer, "listing channels")
    entries = _find_channel_list(data)
    if entries is None:
        error = data.get("error") if isinstance(data, dict) else None
        hint = f", gateway error: {answer.origin.quote(error)}" if isinstance(error, str) else ""
        raise HealthcheckError(f"listing channels: the answer holds no channel list{hint}; "
                               f"check the gateway version")
    channels, problems, seen = [], [], set()
    for position, entry in entries_in_time(entries, budget_end, "listing channels"):
        field = _entry_id_field(entry)
        channel_id = checked_id(entry, field, position, problems, answer.origin)
        if channel_id is None:
            continue
        if channel_id in seen:
            continue
        seen.add(channel_id)
        status = entry.get("status")
        word = _SURROGATES.sub("\ufffd", status.strip().lower()) \
            if isinstance(status, str) else ""
        channels.append(Channel(channel_id, word, "transient"
                                if word in WRAPPER_TRANSIENT_STATUSES else ""))
    return Listing(channels, problems)


def _find_channel_list(data) -> Optional[list]:
    if isinstance(data, list):
        return data
    if not isinstance(data, dict) or data.get("success") is False:
        return None
    for holder in (data, data.get("data")):
        if isinstance(holder, list):
            return holder
        if isinstance(holder, dict) and isinstance(holder.get("channels"), list):
            return holder["channels"]
    return None


def _entry_id_field(entry) -> str:
    """The wrapper's id is `id`; older readers fall back to `name`, then `channel_id`."""
    for key in ("id", "name", "channel_id"):
        value = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(value, str) and value.strip():
            return key
    return "id"


def _json_or_none(answer: Answer):
    """Return the answer's decoded JSON body, None when it is not JSON."""
    try:
        return answer.json()
    except ValueError:
        return None


def is_not_started(answer: Answer) -> bool:
    """True when the gateway says the WPPConnect client is not running (CLOSED)."""
    return b"session not started" in answer.body[:MAX_QUOTE_CHARS * 10].lower()


def classify_qr_answer(answer: Answer) -> Revival:
    """Return what a /qr answer means for the session (see the gateway contract)."""
    error = answer.error_text() or ""
    if answer.status == 500 and "invalid qr code response" in error.lower():
        # Before a gateway patch, asking a connected session for a QR answered 500.
        return Revival("already_connected", "the gateway answered as for a connected session")
    if not 200 <= answer.status < 300:
        return Revival("failed", describe_http_failure(answer, "reconnect call"))
    data = _json_or_none(answer)
    if not isinstance(data, dict):
        return Revival("failed", f"reconnect call: HTTP {answer.status} without a JSON object; "
                                 f"check {answer.origin.url_setting}")
    if data.get("success") is False:
        return Revival("failed", f"reconnect call refused: "
                                 f"{answer.origin.quote(error or 'no reason')}")
    holders = [data] + [data[k] for k in ("data", "result") if isinstance(data.get(k), dict)]
    for holder in holders:
        for name in QR_IMAGE_FIELDS:
            if isinstance(holder.get(name), str) and holder[name].strip():
                return Revival("qr_issued", "the stored login is no longer valid: a person must "
                                            "scan a new QR code in the panel")
    statuses = {h.get(k).strip().lower() for h in holders for k in ("status", "state")
                if isinstance(h.get(k), str)}
    if statuses & CONNECTED_QR_STATUSES:
        return Revival("already_connected", "the session answered as connected")
    if statuses & STARTING_QR_STATUSES:
        return Revival("starting", "the session is still starting")
    return Revival("reconnect_requested", "reconnect requested from the stored login")


def classify_start_answer(answer: Answer) -> Revival:
    """Return what a start-session answer means."""
    if answer.status == 404:
        return Revival("failed", "the session is not started and this gateway has no "
                                 "start-session route (HTTP 404): start it from the panel")
    if not 200 <= answer.status < 300:
        return Revival("failed", describe_http_failure(answer, "start-session call"))
    data = _json_or_none(answer)
    if isinstance(data, dict) and data.get("success") is False:
        return Revival("failed", "start-session refused: "
                                 f"{answer.origin.quote(answer.error_text() or 'no reason')}")
    return Revival("start_session_requested", "the session was not started; start-session "
                                              "requested, it relaunches from the stored login")
