"""Simulators of WAHA, Evolution API v2 and WPPConnect-Server, quirks included.

Each answers as the shared gateway facts say the real server does (its "Simulator notes"), on a
real HTTP server on 127.0.0.1. Every call that would destroy a login or stop the server
(logout, delete, clear-session-data, /unhealthy, server stop) is recorded as the endpoint
"forbidden" and answered as the real server would: the tests assert it is never called.
"""

import json
import secrets
import sys
import time
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

from gateway_simulator import QR_DATA_URL, HttpSimulator

UNAUTHORIZED_WAHA = {"message": "Unauthorized", "statusCode": 401}


class WahaSimulator(HttpSimulator):
    """WAHA Core: X-Api-Key; sessions listed with ?all=true; restart from any state.

    As the real NOWEB engine without WhatsApp: `restart` always answers STARTING (never
    SCAN_QR_CODE, never WORKING), and what the session becomes shows only in later reads. A
    session left STARTING goes to FAILED after `failed_after` seconds (the real server: 59
    tries 2 s apart, about 119 s) and stays there. A restart from STARTING or FAILED takes
    `restart_seconds` (the real server: 3.0 s; 0 here unless a test asks for it).
    """

    ENDPOINTS = ("list", "revive", "start", "info", "forbidden")
    CHANNEL_ENDPOINTS = ("revive",)

    def __init__(self, *args, core: bool = False, failed_after: float = 119.0,
                 restart_seconds: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        #: name -> {"status": WAHA status, "on_restart": recover | qr | fail | starting,
        #: "engine": ..., "next": (monotonic time, status it moves to) or None}
        self.sessions: dict[str, dict] = {}
        self.core = core  # Core serves only the session named "default"
        self.failed_after = failed_after
        self.restart_seconds = restart_seconds

    def add_session(self, name: str, status: str = "WORKING", on_restart: str = "recover",
                    engine: Optional[dict] = None):
        """`on_restart`: recover (WORKING), qr (SCAN_QR_CODE: the login is gone), fail or
        starting (STARTING until FAILED)."""
        self.sessions[name] = {"status": status, "on_restart": on_restart,
                               "engine": engine or {"engine": "NOWEB"}, "next": None}
        if status == "STARTING":
            self._set(name, "STARTING")
        return self

    def _set(self, name: str, status: str, then: Optional[str] = None, after: float = 0.0):
        """Set a session's status now; STARTING moves on to `then` (FAILED by default)."""
        session = self.sessions[name]
        session["status"] = status
        session["next"] = None
        if status == "STARTING":
            session["next"] = ((time.monotonic() + after, then) if then
                               else (time.monotonic() + self.failed_after, "FAILED"))

    def status(self, name: str) -> str:
        """The session's status now, once any change that is due has happened."""
        session = self.sessions[name]
        due = session["next"]
        if due is not None and time.monotonic() >= due[0]:
            self._set(name, due[1])
        return session["status"]

    def classify(self, method, parts):
        if parts[:2] == ["api", "server"] or parts[-1:] == ["logout"] or method == "DELETE" \
                or parts == ["api", "sessions", "stop"]:
            return "forbidden", None
        if method == "GET" and parts == ["api", "sessions"]:
            return "list", None
        if len(parts) == 4 and parts[:2] == ["api", "sessions"] and method == "POST":
            return {"restart": "revive", "start": "start"}.get(parts[3], "other"), \
                unquote(parts[2])
        if len(parts) == 3 and parts[:2] == ["api", "sessions"] and method == "GET":
            return "info", unquote(parts[2])
        return "other", None

    def _info(self, name: str) -> dict:
        status = self.status(name)
        running = status != "STOPPED"
        return {"name": name, "status": status, "config": None,
                "me": {"id": "5511999999999@c.us", "pushName": "x"} if running else None,
                "presence": None, "timestamps": {} if running else {"activity": None}}

    def respond(self, method, endpoint, channel, path, headers, body):
        if path.split("?")[0] == "/ping":
            return 200, {"message": "pong"}
        if headers.get("X-Api-Key") != self.secret:
            return 401, UNAUTHORIZED_WAHA
        if endpoint == "forbidden":
            return 201, {"message": "this call would have destroyed the login"}
        if channel is not None and self.core and channel != "default":
            return 422, {"message": f"WAHA Core support only 'default' session. You tried to "
                                    f"access '{channel}' session", "error": "Unprocessable "
                                    "Entity", "statusCode": 422}
        if channel is not None and channel not in self.sessions:
            return 404, {"message": "Session not found", "error": "Not Found", "statusCode": 404}
        if endpoint == "list":
            show_all = parse_qs(urlsplit(path).query).get("all") == ["true"]
            with self._lock:
                return 200, [self._info(n) for n in self.sessions
                             if show_all or self.status(n) != "STOPPED"]
        if endpoint == "info":
            with self._lock:
                return 200, {**self._info(channel), "engine": self.sessions[channel]["engine"]}
        if endpoint == "start":
            with self._lock:
                if self.status(channel) != "STOPPED":
                    return 422, {"message": f"Session '{channel}' is already started.",
                                 "error": "Unprocessable Entity", "statusCode": 422}
                self._set(channel, "STARTING")
                return 201, self._info(channel)
        if endpoint == "revive":
            with self._lock:
                was = self.status(channel)
            if was in ("STARTING", "FAILED") and self.restart_seconds:
                time.sleep(self.restart_seconds)  # the real server stops the engine first
            with self._lock:
                session = self.sessions[channel]
                behaviour = session["on_restart"]
                then = {"recover": "WORKING", "qr": "SCAN_QR_CODE"}.get(behaviour)
                self._set(channel, "STARTING", then)
                if behaviour == "recover":
                    session["engine"] = {"engine": session["engine"].get("engine"),
                                         "state": "CONNECTED", "gows": {"connected": True}}
                # Always STARTING: what the restart comes to shows only in a later read.
                return 201, {**self._info(channel), "status": "STARTING"}
        return super().respond(method, endpoint, channel, path, headers, body)


class EvolutionSimulator(HttpSimulator):
    """Evolution API v2 (Baileys): apikey; the database's state lags the live one."""

    ENDPOINTS = ("list", "state", "connect", "restart", "forbidden")
    CHANNEL_ENDPOINTS = ("connect", "restart")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: name -> {"db": ..., "memory": open | connecting | close | None (not loaded by this
        #: process), "code": int | None, "on_connect": recover | qr | error,
        #: "flip_seconds": None | seconds between close and connecting (a dead connection)}
        self.instances: dict[str, dict] = {}
        self.license_required = False  # 2.4.0-rc2 before activation

    def add_instance(self, name: str, memory: Optional[str] = "open", db: Optional[str] = None,
                     code: Optional[int] = None, on_connect: str = "recover",
                     flip_seconds: Optional[float] = None):
        """Add an instance. `flip_seconds`: its connection is dead and Evolution's own
        reconnect loop flips it between close and connecting every so many seconds (2-10 on
        the real server); 0 flips it at every state read, so each run sees the other word."""
        self.instances[name] = {"db": db or memory or "open", "memory": memory, "code": code,
                                "on_connect": on_connect, "flip_seconds": flip_seconds,
                                "flip_start": time.monotonic(), "flip_reads": 0}
        return self

    def _memory(self, instance: dict, read: bool = False) -> Optional[str]:
        """The in-memory state now; a flipping instance's comes from the clock or the reads."""
        period = instance["flip_seconds"]
        if period is None:
            return instance["memory"]
        if period == 0:
            step = instance["flip_reads"]
            instance["flip_reads"] += read
        else:
            step = int((time.monotonic() - instance["flip_start"]) / period)
        return ("close", "connecting")[step % 2]

    def classify(self, method, parts):
        if method == "DELETE" and parts[:1] == ["instance"]:
            return "forbidden", unquote(parts[-1])
        if method == "GET" and parts == ["instance", "fetchInstances"]:
            return "list", None
        if len(parts) == 3 and parts[0] == "instance":
            name = unquote(parts[2])
            kind = {("GET", "connectionState"): "state", ("GET", "connect"): "connect",
                    ("POST", "restart"): "restart"}.get((method, parts[1]), "other")
            return kind, name
        return "other", None

    def respond(self, method, endpoint, channel, path, headers, body):
        if path == "/":
            return 200, {"status": 200, "message": "Welcome to the Evolution API, it is working!"}
        if self.license_required:
            return 503, {"error": "service not activated", "code": "LICENSE_REQUIRED",
                         "register_url": "https://example.invalid/register",
                         "message": "activate this instance"}
        # Guard order: existence, then the key. An unknown instance is a 404 even without one.
        if channel is not None and channel not in self.instances:
            return 404, {"status": 404, "error": "Not Found",
                         "response": {"message": [f'The "{channel}" instance does not exist']}}
        if headers.get("apikey") != self.secret:
            return 401, {"status": 401, "error": "Unauthorized",
                         "response": {"message": "Unauthorized"}}
        if endpoint == "forbidden":
            return 200, {"status": "SUCCESS", "error": False, "response": {"message": "gone"}}
        if endpoint == "list":
            with self._lock:
                return 200, [{"id": f"id-{n}", "name": n, "connectionStatus": i["db"],
                              "disconnectionReasonCode": i["code"], "token": secrets.token_hex(8),
                              "integration": "WHATSAPP-BAILEYS", "_count": {"Message": 0}}
                             for n, i in self.instances.items()]
        instance = self.instances.get(channel)
        if endpoint == "state":
            state = {"instanceName": channel}
            memory = self._memory(instance, read=True)
            if memory is not None:  # not loaded in memory: no state at all
                state["state"] = memory
            return 200, {"instance": state}
        if endpoint == "connect":
            memory = self._memory(instance)
            if memory == "open":
                return 200, {"instance": {"instanceName": channel, "state": "open"}}
            # An instance this process never loaded has no socket to connect: every connect
            # fails, and only restarting Evolution loads it.
            if instance["on_connect"] == "error" or memory is None:
                return 200, {"error": True, "message": "[object Object]"}
            if instance["flip_seconds"] is not None:
                # The dead connection: the socket opens and drops again, the loop goes on.
                return 200, {"count": 0}
            if instance["on_connect"] == "qr":
                instance["memory"] = instance["db"] = "connecting"
                return 200, {"pairingCode": None, "code": "2@abc", "base64": QR_DATA_URL,
                             "count": 1}
            instance.update(memory="open", db="open", code=None)
            return 200, {"count": 0}
        if endpoint == "restart":
            memory = self._memory(instance)
            if memory in (None, "close"):
                return 200, {"error": True, "message": "[object Object]"}
            stale = {"instance": {"instanceName": channel, "state": memory}}
            if instance["flip_seconds"] is None:
                instance.update(memory="open", db="open")
            return 200, stale
        return 404, {"status": 404, "error": "Not Found",
                     "response": {"message": [f"Cannot {method} {path}"]}}


class WppconnectSimulator(HttpSimulator):
    """WPPConnect-Server 2.10: SECRET_KEY in paths, bcrypt-like tokens, always-200 checks."""

    ENDPOINTS = ("list", "token", "status", "check", "start", "close", "forbidden")
    CHANNEL_ENDPOINTS = ("start", "close")

    def __init__(self, *args, qr_seconds: float = 60.0, start_seconds: float = 0.1, **kwargs):
        super().__init__(*args, **kwargs)
        #: name -> {"status": CONNECTED | INITIALIZING | QRCODE | PHONECODE | CLOSED | None,
        #: "page_alive": bool, "on_start": recover | qr | initializing, "config": dict,
        #: "browser_leaked": bool, "urlcode": the last QR's text or None, "moves_at",
        #: "closes_at": monotonic times of the next change or None}
        self.sessions: dict[str, dict] = {}
        self.tokens: dict[str, set] = {}
        #: The library's autoClose: an unscanned QR ends the session CLOSED after this long.
        self.qr_seconds = qr_seconds
        #: How long a started session stays INITIALIZING before it connects or shows a QR.
        self.start_seconds = start_seconds

    def add_session(self, name: str, status: Optional[str] = "CONNECTED",
                    page_alive: bool = True, on_start: str = "recover"):
        self.sessions[name] = self._new_session(status, page_alive, on_start,
                                                {"webhook": "https://panel"})
        if status == "QRCODE":
            self._show_qr(self.sessions[name])
        return self

    def _new_session(self, status, page_alive, on_start, config) -> dict:
        return {"status": status, "page_alive": page_alive, "on_start": on_start,
                "config": config, "browser_leaked": False, "urlcode": None,
                "moves_at": None, "closes_at": None}

    def unlink(self, name: str):
        """The phone unlinks the device: the library's disconnectedMobile drops the client
        (createSessionUtil.ts:113-121), so the status reads CLOSED, as for a stopped one."""
        with self._lock:
            self.sessions[name].update(status=None, urlcode=None, page_alive=False,
                                       on_start="qr", moves_at=None, closes_at=None)
        return self

    def _show_qr(self, session: dict):
        session.update(status="QRCODE", urlcode="2@" + secrets.token_hex(8),
                       closes_at=time.monotonic() + self.qr_seconds)

    def _advance(self, session: dict):
        """Move a session along its own clock: INITIALIZING ends, an unscanned QR times out."""
        now = time.monotonic()
        if session["status"] == "INITIALIZING" and session["moves_at"] is not None \
                and now >= session["moves_at"]:
            session["moves_at"] = None
            if session["on_start"] == "qr":
                self._show_qr(session)
            else:
                session.update(status="CONNECTED", page_alive=True)
        if session["status"] == "QRCODE" and session["closes_at"] is not None \
                and time.monotonic() >= session["closes_at"]:
            # autoClose on the placeholder client: close() throws before the entry is reset,
            # so the status is CLOSED and the stale QR text stays (createSessionUtil.ts:113-121).
            session.update(status="CLOSED", closes_at=None)

    def classify(self, method, parts):
        if parts == ["unhealthy"] or parts[-1:] in (["logout-session"], ["clear-session-data"]):
            return "forbidden", None
        if len(parts) == 3 and parts[0] == "api" and parts[2] == "show-all-sessions":
            return "list", None
        if len(parts) == 4 and parts[0] == "api" and parts[3] == "generate-token":
            return "token", unquote(parts[1])
        if len(parts) == 3 and parts[0] == "api":
            kind = {"status-session": "status", "check-connection-session": "check",
                    "start-session": "start", "close-session": "close"}.get(parts[2], "other")
            return kind, unquote(parts[1])
        return "other", None

    def _status(self, name: str) -> str:
        status = self.sessions.get(name, {}).get("status")
        return status or "CLOSED"

    def respond(self, method, endpoint, channel, path, headers, body):
        parts = path.split("?")[0].strip("/").split("/")
        decorate = headers.get("Content-Type") == "application/json"
        answer = self._respond(method, endpoint, channel, parts, headers, body)
        if decorate and len(answer) == 2 and isinstance(answer[1], dict):
            answer = (answer[0], {**answer[1], "session": channel or ""})
        return answer

    def _respond(self, method, endpoint, channel, parts, headers, body):
        if parts == ["healthz"]:
            return 200, {"uptime": 1, "message": "OK", "timestamp": 0}
        if endpoint == "forbidden":
            return 503 if parts == ["unhealthy"] else 200, {"status": True}
        if endpoint == "list":
            if unquote(parts[1]) != self.secret:
                return 400, {"response": False, "message": "The token is incorrect"}
            with self._lock:
                return 200, {"response": [n for n in self.sessions]}
        if endpoint == "token":
            if unquote(parts[2]) != self.secret:
                return 400, {"response": False, "message": "The SECRET_KEY is incorrect"}
            token = "$2b$10$" + secrets.token_urlsafe(40)
            with self._lock:
                self.tokens.setdefault(channel, set()).add(token)
            return 201, {"status": "success", "session": channel, "token": token,
                         "full": f"{channel}:{token}"}
        words = (headers.get("Authorization") or "").split(" ")
        if len(words) < 2:
            return 401, {"message": "Token is not present. Check your header and try again"}
        if words[1] not in self.tokens.get(channel, ()):
            return 401, {"error": "Check that the Session and Token are correct"}
        with self._lock:
            session = self.sessions.setdefault(channel, self._new_session(None, False,
                                                                          "recover", {}))
            self._advance(session)
        if endpoint == "status":
            if session["status"] is None:  # no client, or one closed by close-session
                return 200, {"status": "CLOSED", "qrcode": None}
            answer = {"status": session["status"], "qrcode": None, "version": "2.10.4"}
            if session["urlcode"]:  # never cleared, not even on CONNECTED
                answer.update(qrcode=QR_DATA_URL, urlcode=session["urlcode"])
            return 200, answer
        if endpoint == "check":
            alive = session["status"] == "CONNECTED" and session["page_alive"]
            return 200, ({"status": True, "message": "Connected"} if alive
                         else {"status": False, "message": "Disconnected"})
        if endpoint == "start":
            request = json.loads(body or b"{}")
            if request.get("waitQrCode"):
                return 200, None  # the real server does not answer while the session starts
            previous = {"status": self._status(channel), "qrcode": None}
            if session["status"] in (None, "CLOSED"):
                if request:  # anything but {} replaces the stored webhook settings
                    session["config"] = request
                session["status"] = "INITIALIZING"
                if not session["browser_leaked"] and session["on_start"] != "initializing":
                    # "the browser is already running" keeps a leaked one INITIALIZING for good
                    session["moves_at"] = time.monotonic() + self.start_seconds
            return 200, previous
        if endpoint == "close":
            if session["status"] is None:
                return 500, {"status": False, "message": "Error closing session", "error": {}}
            if session["status"] == "INITIALIZING":
                session.update(status="CLOSED", browser_leaked=True)
                return 500, {"status": False, "message": "Error closing session", "error": {}}
            session.update(status=None, urlcode=None, moves_at=None, closes_at=None)
            return 200, {"status": True, "message": "Session successfully closed"}
        return 404, b"<pre>Cannot GET</pre>", "text/html"


SIMULATORS = {"waha": WahaSimulator, "evolution": EvolutionSimulator,
              "wppconnect": WppconnectSimulator}


if __name__ == "__main__":
    sys.exit("use tools/demo.py --gateway waha|evolution|wppconnect to see one at work")
