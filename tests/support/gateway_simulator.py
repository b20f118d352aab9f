#!/usr/bin/env python3
"""A WhatsApp gateway simulator that answers as the real gateway-wrapper does, faults included.

It implements the gateway contract (GET /api/channels, GET /api/channels/<id>/qr,
POST /api/channels/<id>/start-session, the X-Gateway-Secret check) on a real HTTP server, so
healthcheck_sessions.py can be run against it exactly as cron runs it against the real one.

By hand:
    python3 tests/support/gateway_simulator.py --port 8443 --secret demo \\
        --channel pixel12digital=connected --channel imobsites=disconnected

Each --channel is ID=STATUS[:ON_KICK]; ON_KICK is what the session does when kicked (see KICK_BEHAVIOURS).
Tests use the GatewaySimulator class directly: set channels, faults and latency, read `requests`.
"""

import argparse
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import unquote

#: What a session does when its /qr is called.
KICK_BEHAVIOURS = {
    "reconnect": "200 {success: true}; the session becomes connected (login still valid)",
    "qr": "200 with a QR image; the session stays qr_required (a person must scan)",
    "starting": "200 with qr null and status INITIALIZING",
    "connected": "200 with qr null and status CONNECTED",
    "connected_500": "HTTP 500 'Invalid QR code response' (a connected session, pre-patch gateway)",
    "not_started": "500 'Session not started'; start-session makes it connected",
    "stay_down": "200 {success: true} but the session stays disconnected",
}

QR_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

HTML_PAGES = {
    401: "<html><head><title>401 Authorization Required</title></head><body><center><h1>401 Authorization Required</h1></center><hr><center>nginx</center></body></html>",
    404: "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>",
    500: "<!DOCTYPE html><html><body><h1>500 Internal Server Error</h1></body></html>",
    502: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
    504: "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></body></html>",
}


class Fault:
    """A canned misbehaviour for one endpoint ("list", "qr" or "start")."""

    def __init__(self, kind: str, status: int = 200, body=b"", content_type="application/json",
                 headers: Optional[dict[str, str]] = None, channel: Optional[str] = None,
                 interval: float = 1.0, size: int = 0, times: Optional[int] = None):
        self.kind = kind            # response | hang | trickle | reset | big | stop_listening
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = headers or {}
        self.channel = channel      # only for this channel (qr/start), None for all
        self.interval = interval    # trickle: seconds between bytes
        self.size = size            # big: body size in bytes
        self.times = times          # how many requests it applies to; None for all


def html_fault(status: int, **kw) -> Fault:
    return Fault("response", status, HTML_PAGES.get(status, HTML_PAGES[500]), "text/html", **kw)


def json_fault(status: int, payload, **kw) -> Fault:
    return Fault("response", status, json.dumps(payload), "application/json", **kw)


class HttpSimulator:
    """A real HTTP server on 127.0.0.1 with switchable faults, latency and a request record.

    A gateway's simulator subclasses it: `classify` names the endpoint a request is for, and
    `respond` answers it. Faults and latency are set per endpoint name.
    """

    #: The endpoint names of this gateway; "other" catches the rest.
    ENDPOINTS: tuple[str, ...] = ("other",)
    #: Endpoints whose latency also gets `channel_latency` for the channel they name.
    CHANNEL_ENDPOINTS: tuple[str, ...] = ()

    def __init__(self, secret: str = "test-secret-0123456789", host: str = "127.0.0.1",
                 port: int = 0, tls: Optional[tuple[str, str]] = None):
        self.secret = secret
        self.faults: dict[str, list[Fault]] = {}
        self.latency = {name: 0.0 for name in self.ENDPOINTS}
        self.channel_latency: dict[str, float] = {}  # extra seconds on one channel's calls
        self.in_flight = {name: 0 for name in self.ENDPOINTS + ("other",)}
        self.max_in_flight = dict(self.in_flight)  # the most requests handled at once
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls:  # (certificate file, key file): serve HTTPS, as nginx does on the real host
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread: Optional[threading.Thread] = None

    # -- set-up ---------------------------------------------------------------------------------
    def set_fault(self, endpoint: str, fault: Fault):
        self.faults.setdefault(endpoint, []).append(fault)
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # -- what was received ----------------------------------------------------------------------
    def count(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["endpoint"] == endpoint)

    def connections(self) -> int:
        """How many TCP connections the requests came over."""
        with self._lock:
            return len({r["client"] for r in self.requests})

    def calls(self, endpoint: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["endpoint"] == endpoint]

    # -- what a gateway simulator defines -------------------------------------------------------
    def classify(self, method: str, parts: list[str]) -> tuple[str, Optional[str]]:
        """Return (endpoint name, channel) for a request path split on "/"."""
        return "other", None

    def respond(self, method: str, endpoint: str, channel: Optional[str], path: str,
                headers, body: bytes):
        """Return (HTTP status, JSON-able payload) or (status, bytes, content type)."""
        return 404, f"Cannot {method} {path}".encode(), "text/html"

    # -- behaviour ------------------------------------------------------------------------------
    def _take_fault(self, endpoint: str, channel: Optional[str]) -> Optional[Fault]:
        with self._lock:
            for fault in self.faults.get(endpoint, []):
                if fault.channel is not None and fault.channel != channel:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    def _list_payload(self):
        """What a list answers; `stop_listening` serves it once before going away."""
        return []


    def _handler_class(self):
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: tests read `requests` instead
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and
                # the client's delayed ACK add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

            def do_PUT(self):
                self._route("PUT")

            def _route(self, method: str):
                path = self.path.split("?", 1)[0]
                parts = path.strip("/").split("/")
                endpoint, channel = simulator.classify(method, parts)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with simulator._lock:
                    simulator.requests.append({"method": method, "path": self.path,
                                               "endpoint": endpoint, "channel": channel,
                                               "headers": dict(self.headers), "body": body,
                                               "client": self.client_address,
                                               "at": time.monotonic()})
                    simulator.in_flight[endpoint] += 1
                    simulator.max_in_flight[endpoint] = max(simulator.max_in_flight[endpoint],
                                                            simulator.in_flight[endpoint])
                try:
                    self._answer(method, endpoint, channel, body)
                finally:
                    with simulator._lock:
                        simulator.in_flight[endpoint] -= 1

            def _answer(self, method, endpoint, channel, body):
                delay = simulator.latency.get(endpoint, 0.0) + (
                    simulator.channel_latency.get(channel, 0.0)
                    if endpoint in simulator.CHANNEL_ENDPOINTS else 0.0)
                if delay:
                    time.sleep(delay)
                fault = simulator._take_fault(endpoint, channel)
                if fault is not None:
                    return self._fault(fault)
                answer = simulator.respond(method, endpoint, channel, self.path, self.headers,
                                           body)
                if len(answer) == 3:
                    return self._send(*answer)
                status, payload = answer
                if payload is None:  # a request that gets no answer at all
                    simulator._stopping.wait(120)
                    self.close_connection = True
                    return
                self._json(status, payload)

            def _json(self, status: int, payload):
                self._send(status, json.dumps(payload).encode("utf-8"), "application/json")

            def _send(self, status: int, body: bytes, content_type: str, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if "Content-Length" not in (headers or {}):  # a fault may send its own
                    self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, fault: Fault):
                if fault.kind == "stop_listening":
                    # Answer this call normally, but refuse every later connection.
                    simulator._server.shutdown()
                    simulator._server.socket.close()
                    return self._send(200, json.dumps(simulator._list_payload()).encode(),
                                      "application/json", {"Connection": "close"})
                if fault.kind == "response":
                    return self._send(fault.status, fault.body, fault.content_type, fault.headers)
                if fault.kind == "hang":
                    simulator._stopping.wait(120)
                    self.close_connection = True
                    return
                if fault.kind == "trickle":
                    self.send_response(fault.status)
                    self.send_header("Content-Type", fault.content_type)
                    self.send_header("Content-Length", str(len(fault.body)))
                    self.end_headers()
                    self.wfile.flush()
                    for byte in fault.body:
                        if simulator._stopping.wait(fault.interval):
                            break
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            break
                    self.close_connection = True
                    return
                if fault.kind == "reset":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"success": true, "channels": [{"id": "a", "sta')
                    self.wfile.flush()
                    # SO_LINGER 0: close with a TCP reset instead of a clean FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if fault.kind == "big":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    if fault.headers.get("declare_length", "yes") == "yes":
                        self.send_header("Content-Length", str(fault.size))
                    self.end_headers()
                    block = b" " * 65536
                    sent = 0
                    try:
                        while sent < fault.size:
                            self.wfile.write(block[:fault.size - sent])
                            sent += len(block)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                raise ValueError(f"unknown fault kind {fault.kind}")

        return Handler


class GatewaySimulator(HttpSimulator):
    """The operator's gateway-wrapper (GET /api/channels, /qr, start-session)."""

    ENDPOINTS = ("list", "qr", "start")
    CHANNEL_ENDPOINTS = ("qr",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.channels: dict[str, dict[str, str]] = {}
        self.list_shape = "channels"      # channels | data | bare
        self.id_field = "id"              # id | name | channel_id
        self.start_session_route = True
        self.raw_list: Optional[object] = None  # when set, served as the list's JSON as it is

    def add_channel(self, channel_id: str, status: str = "connected", on_kick: str = "reconnect"):
        if on_kick not in KICK_BEHAVIOURS:
            raise ValueError(f"unknown kick behaviour {on_kick!r}")
        self.channels[channel_id] = {"status": status, "on_kick": on_kick}
        return self

    def classify(self, method, parts):
        if method == "GET" and parts == ["api", "channels"]:
            return "list", None
        if len(parts) == 4 and parts[:2] == ["api", "channels"]:
            channel = unquote(parts[2])
            if method == "GET" and parts[3] == "qr":
                return "qr", channel
            if method == "POST" and parts[3] == "start-session":
                return "start", channel
            return "other", channel
        return "other", None

    def respond(self, method, endpoint, channel, path, headers, body):
        secret = headers.get("X-Gateway-Secret")
        if secret is None:
            return 401, {"success": False, "error": "Missing X-Gateway-Secret header"}
        if secret != self.secret:
            return 401, {"success": False, "error": "Unauthorized"}
        if endpoint == "list":
            return 200, self._list_payload()
        if endpoint == "qr":
            return self._kick(channel)
        if endpoint == "start" and self.start_session_route:
            return self._start_session(channel)
        return super().respond(method, endpoint, channel, path, headers, body)

    def _list_payload(self):
        if self.raw_list is not None:
            return self.raw_list
        with self._lock:
            entries = [{self.id_field: cid, "status": ch["status"]}
                       for cid, ch in self.channels.items()]
        if self.list_shape == "bare":
            return entries
        if self.list_shape == "data":
            return {"success": True, "data": {"channels": entries}}
        return {"success": True, "channels": entries, "total": len(entries)}

    def _kick(self, channel_id: str):
        """Return (status, payload) for /qr, changing the session as WPPConnect would."""
        with self._lock:
            channel = self.channels.get(channel_id)
            if channel is None:
                return 404, {"success": False, "error": "Canal não encontrado"}
            behaviour = channel["on_kick"]
            if channel["status"] == "connected" and behaviour != "connected_500":
                return 200, {"success": True, "qr": None, "status": "CONNECTED",
                             "message": "Session already connected"}
            if behaviour == "reconnect":
                channel["status"] = "connected"
                return 200, {"success": True}
            if behaviour == "qr":
                channel["status"] = "qr_required"
                return 200, {"success": True, "qr": QR_DATA_URL}
            if behaviour == "starting":
                return 200, {"success": True, "qr": None, "status": "INITIALIZING"}
            if behaviour == "connected":
                return 200, {"success": True, "qr": None, "status": "CONNECTED"}
            if behaviour == "connected_500":
                return 500, {"success": False, "error": "WPPConnect getQRCode failed: "
                                                        "Invalid QR code response from server"}
            if behaviour == "not_started":
                return 500, {"success": False, "error": "Session not started. Please, use the "
                                                        "/start-session route, for "
                                                        "initialization your session"}
            return 200, {"success": True}  # stay_down

    def _start_session(self, channel_id: str):
        with self._lock:
            channel = self.channels.get(channel_id)
            if channel is None:
                return 404, {"success": False, "error": "Canal não encontrado"}
            channel["status"] = "connected"
            channel["on_kick"] = "reconnect"
            return 200, {"success": True, "status": "starting"}



def _parse_channel(spec: str):
    name, _, rest = spec.partition("=")
    status, _, on_kick = rest.partition(":")
    return name, status or "connected", on_kick or "reconnect"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run the WhatsApp gateway simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--secret", default="test-secret-0123456789")
    parser.add_argument("--channel", action="append", default=[], metavar="ID=STATUS[:ON_KICK]",
                        help=f"a channel; ON_KICK is one of {', '.join(KICK_BEHAVIOURS)}")
    parser.add_argument("--list-latency", type=float, default=0.0)
    parser.add_argument("--kick-latency", type=float, default=0.0)
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args(argv)
    sim = GatewaySimulator(args.secret, args.host, args.port)
    for spec in args.channel or ["pixel12digital=connected", "imobsites=disconnected"]:
        sim.add_channel(*_parse_channel(spec))
    sim.latency.update(list=args.list_latency, qr=args.kick_latency, start=args.kick_latency)
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(sim._server.server_address[1]))
    print(f"gateway simulator on {sim.url} (secret {args.secret!r}); Ctrl-C stops it",
          file=sys.stderr, flush=True)
    try:
        sim._server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
