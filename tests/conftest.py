"""Fixtures: a real gateway simulator on 127.0.0.1, and the real script run as cron runs it."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The simulators, the database servers and the other helpers of the tests.
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gateway_simulator import GatewaySimulator

SCRIPT = ROOT / "healthcheck_sessions.py"
PACKAGE = ROOT / "healthcheck"
#: HEALTHCHECK_TEST_PYZ=<archive> runs the end-to-end tests against the one-file build instead
#: (.ci/run does this for a part of the suite after building it).
PYZ = os.environ.get("HEALTHCHECK_TEST_PYZ")
COMMAND_NAME = "healthcheck_sessions.pyz" if PYZ else "healthcheck_sessions.py"


def lay_command(folder: Path) -> Path:
    """Copy the command into `folder` as an operator deploys it; return the path to run."""
    if PYZ:
        shutil.copy(PYZ, folder / COMMAND_NAME)
    else:
        shutil.copy(SCRIPT, folder / COMMAND_NAME)
        shutil.copytree(PACKAGE, folder / "healthcheck",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return folder / COMMAND_NAME


def source_files() -> list[Path]:
    """Every Python file of the command: the entry point and the package."""
    return [SCRIPT, *sorted(PACKAGE.rglob("*.py"))]
SECRET = "s3cr3t-T0k3n-9f8e7d6c5b4a"

#: Short timeouts so a hung fault costs seconds, not minutes.
FAST_SETTINGS = {
    "HEALTHCHECK_CONNECT_TIMEOUT": "2",
    "HEALTHCHECK_LIST_TIMEOUT": "3",
    "HEALTHCHECK_QR_TIMEOUT": "3",
    "HEALTHCHECK_DEADLINE": "20",
    "HEALTHCHECK_VERIFY_SECONDS": "0",
    "HEALTHCHECK_ALERT_TIMEOUT": "3",
}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for refused connections and fixed ports)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    """What one run of the script left behind."""

    code: int
    stdout: str
    stderr: str
    home: Path

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "healthcheck-sessions.log"

    @property
    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""

    @property
    def status_line(self) -> str:
        """The whole first line, performance data included."""
        return self.stdout.splitlines()[0] if self.stdout else ""

    @property
    def first_line(self) -> str:
        """The first line's text, without the performance data after ` | `."""
        return self.status_line.split(" | ", 1)[0]

    @property
    def perfdata(self) -> str:
        return self.status_line.split(" | ", 1)[1] if " | " in self.status_line else ""

    def everything(self) -> str:
        """All the run printed and wrote, for secret checks."""
        texts = [self.stdout, self.stderr]
        for path in self.home.rglob("*"):
            inside = path.relative_to(self.home).parts
            if path.is_file() and path.name not in (COMMAND_NAME, ".env") and \
                    inside[0] != "healthcheck":  # the package's own files
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(texts)


@pytest.fixture
def gateway():
    """A running gateway simulator with the operator's two channels, both connected."""
    sim = GatewaySimulator(secret=SECRET)
    sim.add_channel("pixel12digital", "connected")
    sim.add_channel("imobsites", "connected")
    sim.start()
    yield sim
    sim.stop()


def write_env(path: Path, values: dict[str, str], mode: int = 0o600) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(mode)  # it holds the secret: the script warns when others can read it


@pytest.fixture
def home(tmp_path):
    """A folder holding a copy of the command, as an operator would lay it next to the panel."""
    folder = tmp_path / "panel"
    folder.mkdir()
    lay_command(folder)
    return folder


@pytest.fixture
def not_a_folder(tmp_path):
    """A regular file where a folder should be: nothing can be written below it, even as root."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    return blocker


@pytest.fixture
def run_check(home, gateway, tmp_path):
    """Run the script once as a subprocess, with its own .env; returns a Run."""

    def run(*args: str, env: Optional[dict[str, str]] = None, environ: Optional[dict] = None,
            write_dotenv: bool = True, timeout: float = 60, cwd: Optional[Path] = None,
            stdout=None, stderr=None) -> Run:
        values = {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET}
        values.update(FAST_SETTINGS)
        values.update(env or {})
        values = {k: v for k, v in values.items() if v is not None}
        if write_dotenv:
            write_env(home / ".env", values)
        process_env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("WPP_", "HEALTHCHECK_", "INFRA_"))}
        process_env.update(environ or {})
        cwd = cwd or tmp_path  # never the script's folder: cron's cwd is not reliable
        command: list[str] = [sys.executable, str(home / COMMAND_NAME), *args]
        if stdout is not None:
            done = subprocess.run(command, stdout=stdout, stderr=stderr or subprocess.PIPE, cwd=cwd,
                                  env=process_env, timeout=timeout, text=True, check=False)
            return Run(done.returncode, "", done.stderr or "", home)
        done = subprocess.run(command, capture_output=True, cwd=cwd, env=process_env,
                              timeout=timeout, text=True, check=False)
        return Run(done.returncode, done.stdout, done.stderr, home)

    return run


#: The API key the WAHA, Evolution API and WPPConnect-Server simulators are started with.
BACKEND_KEY = "gw-key-5f4e3d2c1b0a9988"


@pytest.fixture
def backends():
    """A factory of started gateway simulators; each is checked for forbidden calls at the end."""
    from backend_simulators import SIMULATORS
    started = []

    def make(kind: str, **kwargs):
        sim = SIMULATORS[kind](secret=BACKEND_KEY, **kwargs)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
        forbidden = [(r["method"], r["path"]) for r in sim.requests
                     if r["endpoint"] == "forbidden"]
        assert not forbidden, f"a login-destroying call was made: {forbidden}"


def settings_for(kind: str, sim, **extra) -> dict:
    """The settings of a run against the simulator `sim` of gateway `kind`."""
    return {"HEALTHCHECK_GATEWAY": kind, "HEALTHCHECK_GATEWAY_URL": sim.url,
            "HEALTHCHECK_GATEWAY_KEY": BACKEND_KEY, "WPP_GATEWAY_BASE_URL": None,
            "WPP_GATEWAY_SECRET": None, **extra}


def settings_from(values: dict):
    """The Settings that `values` make, read in-process from that mapping alone.

    Read as `--env-file /dev/null` reads the environment: no file, every setting from the
    mapping, through the same checks as a run (None values are left out).
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from healthcheck.settings import load_settings
    return load_settings(Path(os.devnull), environ={k: v for k, v in values.items()
                                                    if v is not None})


def channels_of(run) -> dict:
    """The channels of a --json run, by id."""
    import json
    return {c["id"]: c for c in json.loads(run.stdout)["channels"]}


class Recorder:
    """A real HTTP server on 127.0.0.1 that records every request (webhooks, pings)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        recorder = self
        self.requests: list[dict] = []
        self.status = 200  # what it answers; set to 500 to make deliveries fail

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append({"method": self.command, "path": self.path,
                                          "body": body.decode("utf-8", "replace"),
                                          "headers": dict(self.headers)})
                self.send_response(recorder.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = do_HEAD = _record

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        """The paths requested, without their query strings."""
        from urllib.parse import urlsplit
        return [urlsplit(r["path"]).path for r in self.requests]

    def queries(self) -> list[dict[str, list[str]]]:
        """The query string of each request, parsed."""
        from urllib.parse import parse_qs, urlsplit
        return [parse_qs(urlsplit(r["path"]).query) for r in self.requests]

    def json_bodies(self) -> list[dict]:
        import json
        return [json.loads(r["body"]) for r in self.requests]

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recorder():
    """A running HTTP recorder: point the webhook or the ping URL at it."""
    server = Recorder()
    yield server
    server.stop()


def make_self_signed_certificate(folder: Path):
    """Write a self-signed certificate for 127.0.0.1 and its key; return their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway-simulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                  critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "gateway.crt", folder / "gateway.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


# -- activity databases ---------------------------------------------------------------------------

def documented_queries() -> list[str]:
    """The worked HEALTHCHECK_ACTIVITY_QUERY examples of .env.example: the tests run them as is."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    return [line.split("=", 1)[1] for line in example.splitlines()
            if line.startswith("#HEALTHCHECK_ACTIVITY_QUERY=")]


class ActivityDatabase:
    """One empty database holding inbound messages the way a real panel or gateway stores them.

    sqlite: a plain table with naive text times; mariadb: the panel's webhook_raw_logs (naive
    DATETIME, JSON payload); postgresql: Evolution API's "Message"/"Instance" (epoch seconds).
    """

    def __init__(self, kind: str, url: str):
        import sqlalchemy
        self.kind, self.url = kind, url
        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        panel_query, evolution_query = documented_queries()
        schema = {
            "sqlite": ["CREATE TABLE inbound (channel TEXT, received_at TEXT)"],
            "mariadb": ["CREATE TABLE webhook_raw_logs (id INT AUTO_INCREMENT PRIMARY KEY, "
                        "event_type VARCHAR(32), payload_json LONGTEXT, received_at DATETIME, "
                        "INDEX (received_at))"],
            "postgresql": ['CREATE TABLE "Instance" ("id" TEXT PRIMARY KEY, "name" VARCHAR(255))',
                           'CREATE TABLE "Message" ("id" SERIAL PRIMARY KEY, "key" JSONB, '
                           '"messageTimestamp" INTEGER, "instanceId" TEXT)'],
        }[kind]
        self.query = {"sqlite": "SELECT channel, received_at FROM inbound "
                                "WHERE received_at > :since",
                      "mariadb": panel_query, "postgresql": evolution_query}[kind]
        self.execute(*schema)
        self._instances: set[str] = set()

    def execute(self, *statements: str, rows: Optional[list] = None) -> None:
        import sqlalchemy
        with self.engine.begin() as connection:
            for statement in statements:
                connection.execute(sqlalchemy.text(statement), rows or {})

    def add(self, channel: str, times, zone=None, outbound: bool = False) -> None:
        """Store one inbound (or outbound) message per aware datetime in `times`."""
        import json
        if not times:
            return
        naive = [t.astimezone(zone).replace(tzinfo=None) if zone else
                 t.astimezone().replace(tzinfo=None) for t in times]
        if self.kind == "sqlite":
            if outbound:
                return  # this plain table holds inbound messages only
            rows = [{"c": channel, "t": t.isoformat(sep=" ", timespec="seconds")} for t in naive]
            self.execute("INSERT INTO inbound VALUES (:c, :t)", rows=rows)
        elif self.kind == "mariadb":
            payload = [{"session": {"id": channel}}, {"sessionId": channel},
                       {"session": {"session": channel}}]
            rows = [{"e": "message.sent" if outbound else ("message", "onmessage")[i % 2],
                     "p": json.dumps(payload[i % 3]), "t": t} for i, t in enumerate(naive)]
            self.execute("INSERT INTO webhook_raw_logs (event_type, payload_json, received_at) "
                         "VALUES (:e, :p, :t)", rows=rows)
        else:
            if channel not in self._instances:
                self._instances.add(channel)
                self.execute('INSERT INTO "Instance" VALUES (:i, :n)',
                             rows=[{"i": f"id-{channel}", "n": channel}])
            rows = [{"k": json.dumps({"fromMe": outbound, "id": f"m{i}"}),
                     "t": int(t.timestamp()), "i": f"id-{channel}"} for i, t in enumerate(times)]
            self.execute('INSERT INTO "Message" ("key", "messageTimestamp", "instanceId") '
                         'VALUES (CAST(:k AS JSONB), :t, :i)', rows=rows)

    def settings(self, **extra: str) -> dict[str, str]:
        return {"HEALTHCHECK_ACTIVITY_DB": self.url, "HEALTHCHECK_ACTIVITY_QUERY": self.query,
                **extra}


@pytest.fixture(scope="session")
def database_servers():
    """The database servers, each started the first time a test asks for it."""
    import databases
    started: dict[str, object] = {}

    def get(kind: str):
        if kind not in started:
            try:
                started[kind] = databases.start(kind)
            except databases.ServerMissing as exc:
                if os.environ.get("CI"):
                    pytest.fail(f"{exc}: .ci/run must install it")
                pytest.skip(str(exc))
        return started[kind]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def activity_db(request, database_servers):
    """A fresh activity database of each kind, on a real server."""
    server = database_servers(request.param)
    return ActivityDatabase(request.param, server.new_database())


@pytest.fixture
def sqlite_db(database_servers):
    """A fresh SQLite activity database: for cases that do not depend on the server."""
    return ActivityDatabase("sqlite", database_servers("sqlite").new_database())


@pytest.fixture(scope="module")
def module_simulator(request):
    """One simulator for a whole test module, from the module's `start_simulator()`
    (tests/gateways/: one gateway's simulator, started once per file)."""
    simulator = request.module.start_simulator()
    yield simulator
    simulator.stop()


@pytest.fixture
def sim(module_simulator, request):
    """The module's simulator, emptied for this test by the module's `empty(simulator)`; no
    forbidden call (one that would throw a login away) may reach it."""
    module_simulator.faults.clear()
    module_simulator.requests.clear()
    request.module.empty(module_simulator)
    yield module_simulator
    assert module_simulator.calls("forbidden") == []


def gateway_client(values: dict):
    """The gateway client a run would build from these settings, with the tests' timeouts."""
    import time
    settings = settings_from({**values, **FAST_SETTINGS})
    from healthcheck.gateways import GATEWAYS
    return GATEWAYS[settings.gateway](settings, time.monotonic() + 20)


def listed_channels(client) -> dict:
    """The channels a gateway client lists now, by id."""
    return {channel.id: channel for channel in client.list_sessions().channels}
