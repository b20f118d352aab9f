"""Real database servers for the activity tests: SQLite files, MariaDB and PostgreSQL on loopback.

The servers come from Debian's packages (`mariadb-server`, `postgresql`; `.ci/run` installs
them). Each is started once per test session in a folder of its own, listens on a free port of
127.0.0.1 with password login, and is stopped at the end. A test gets a fresh, empty database.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import sqlalchemy

USER = "healthcheck"
PASSWORD = "db-Pa55w0rd-4f3e2d1c"


class ServerMissing(Exception):
    """The server's programs are not installed on this machine."""


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, what: str, log: Path, seconds: float = 60):
    """Return once `url` accepts a connection; raise with the server's log when it never does."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    end = time.monotonic() + seconds
    error = None
    while time.monotonic() < end:
        if process.poll() is not None:
            break
        try:
            with engine.connect():
                return
        except sqlalchemy.exc.OperationalError as exc:
            error = exc
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start: {error}\n{tail}")


class _ServerProcess:
    """A database server this module started: stopped and its folder removed at the end."""

    process: subprocess.Popen
    folder: Path

    def stop(self) -> None:
        self.process.terminate()  # runuser passes SIGTERM on to postgres
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class MariaDBServer(_ServerProcess):
    """mariadbd from Debian's mariadb-server, in a temporary data folder."""

    dialect = "mysql+pymysql"

    def __init__(self):
        mariadbd = shutil.which("mariadbd") or shutil.which("mysqld") or \
            next(iter(glob.glob("/usr/sbin/mariadbd") + glob.glob("/usr/sbin/mysqld")), None)
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not mariadbd or not install:
            raise ServerMissing("MariaDB is not installed (Debian package mariadb-server)")
        self.folder = Path(tempfile.mkdtemp(prefix="hc-mariadb-"))
        self.port = _free_port()
        data = self.folder / "data"
        self.log = self.folder / "server.log"
        user = ["--user=root"] if os.geteuid() == 0 else []
        #: Also a socket, as on a panel's host (DB_HOST=localhost): the tests may log in on it.
        self.socket = self.folder / "mysqld.sock"
        subprocess.run([install, f"--datadir={data}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", *user], check=True, capture_output=True)
        self.process = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={data}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.socket}",
             # As many hosts run it: a user granted @'localhost' only logs in on the socket.
             "--skip-name-resolve",
             f"--pid-file={self.folder / 'mysqld.pid'}", f"--log-error={self.log}",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # root is root@localhost: with --skip-name-resolve, that is the socket.
        self.admin_url = f"{self.dialect}://root@localhost/mysql?unix_socket={self.socket}"
        _wait_for(self.admin_url, self.process, "MariaDB", self.log)
        self._admin(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'",
                    f"GRANT ALL ON *.* TO '{USER}'@'%'")
        self._counter = 0

    def _admin(self, *statements: str) -> None:
        engine = sqlalchemy.create_engine(self.admin_url, poolclass=sqlalchemy.pool.NullPool)
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sqlalchemy.text(statement))

    def add_local_user(self, name: str, password: str, database: str) -> None:
        """Create a user granted only @'localhost' (what the socket is) on one database."""
        self._admin(f"CREATE USER '{name}'@'localhost' IDENTIFIED BY '{password}'",
                    f"GRANT SELECT ON {database}.* TO '{name}'@'localhost'")

    def new_database(self) -> str:
        """Create an empty database; return its URL (user and password included)."""
        self._counter += 1
        name = f"panel{self._counter}"
        self._admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        return f"{self.dialect}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"


class PostgreSQLServer(_ServerProcess):
    """postgres from Debian's postgresql, in a temporary data folder (run as `postgres` by root)."""

    dialect = "postgresql+psycopg"

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not found:
            raise ServerMissing("PostgreSQL is not installed (Debian package postgresql)")
        bin_dir = Path(found[-1]).parent
        self.folder = Path(tempfile.mkdtemp(prefix="hc-postgres-"))
        self.port = _free_port()
        self.log = self.folder / "server.log"
        data = self.folder / "data"
        as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        password_file = self.folder / "pw"
        password_file.write_text(PASSWORD + "\n")
        if as_user:
            os.chown(password_file, pwd.getpwnam("postgres").pw_uid, -1)
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                        "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8"],
                       check=True, capture_output=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [*as_user, str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port),
                 "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=log, stderr=subprocess.STDOUT)
        self.admin_url = (f"{self.dialect}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres")
        _wait_for(self.admin_url, self.process, "PostgreSQL", self.log)
        self._counter = 0

    def new_database(self) -> str:
        self._counter += 1
        name = f"evolution{self._counter}"
        engine = sqlalchemy.create_engine(self.admin_url, poolclass=sqlalchemy.pool.NullPool,
                                          isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        return f"{self.dialect}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"


class SQLiteFiles:
    """SQLite needs no server: each database is a new file."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="hc-sqlite-"))
        self._counter = 0

    def new_database(self) -> str:
        self._counter += 1
        return f"sqlite:///{self.folder / f'activity{self._counter}.db'}"

    def stop(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


SERVERS = {"sqlite": SQLiteFiles, "mariadb": MariaDBServer, "postgresql": PostgreSQLServer}


def start(kind: str) -> Optional[object]:
    """Start one kind of server; raise ServerMissing when its programs are not installed."""
    return SERVERS[kind]()
