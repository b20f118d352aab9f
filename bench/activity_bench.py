#!/usr/bin/env python3
"""Benchmark: the silence check on a large activity table, in SQLite and in MariaDB.

50 channels, 300,000 inbound messages spread over the last 28 days (busier channels get more),
in the panel's own table shape. The real script runs against the gateway simulator (all 50
channels connected) twice: the first run learns four weeks of history, a later run (after a
quarter of an hour's worth of new messages) reads only what is new. Prints wall time and the
script's own peak memory (max RSS) for each, and the size of the state file.
Not a test: figures for the README. Needs MariaDB from Debian's packages for its rows.

    .venv/bin/python bench/activity_bench.py
"""

import json
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import common  # puts tests/support (the simulators) on sys.path
import databases
import sqlalchemy

CHANNELS = 50
ROWS = 300_000
DAYS = 28
QUERY = ("SELECT JSON_UNQUOTE(JSON_EXTRACT(payload_json, '$.session.id')) AS channel, "
         "received_at FROM webhook_raw_logs WHERE received_at > :since "
         "AND event_type IN ('message', 'onmessage')")
SQLITE_QUERY = QUERY.replace("JSON_UNQUOTE(JSON_EXTRACT(payload_json, '$.session.id'))",
                             "json_extract(payload_json, '$.session.id')")
SCHEMA = {"sqlite": "CREATE TABLE webhook_raw_logs (id INTEGER PRIMARY KEY, event_type TEXT, "
                    "payload_json TEXT, received_at TEXT)",
          "mariadb": "CREATE TABLE webhook_raw_logs (id INT AUTO_INCREMENT PRIMARY KEY, "
                     "event_type VARCHAR(32), payload_json LONGTEXT, received_at DATETIME)"}


def fill(url: str, kind: str, rows: int, start: datetime, end: datetime, seed: int) -> None:
    """Insert `rows` inbound messages between start and end, weighted by channel."""
    engine = sqlalchemy.create_engine(url)
    rng = random.Random(seed)
    weights = [1 + (n % 10) ** 2 for n in range(CHANNELS)]
    span = (end - start).total_seconds()
    with engine.begin() as connection:
        if seed == 0:
            connection.execute(sqlalchemy.text(SCHEMA[kind]))
            connection.execute(sqlalchemy.text("CREATE INDEX received ON webhook_raw_logs "
                                               "(received_at)"))
        batch = []
        for channel in rng.choices(range(CHANNELS), weights, k=rows):
            at = (start + timedelta(seconds=rng.random() * span)).astimezone()
            batch.append({"e": "message", "p": json.dumps({"session": {"id": f"ch{channel}"}}),
                          "t": at.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")})
            if len(batch) == 10_000:
                _insert(connection, batch)
                batch = []
        if batch:
            _insert(connection, batch)


def _insert(connection, batch):
    connection.execute(sqlalchemy.text("INSERT INTO webhook_raw_logs (event_type, payload_json, "
                                       "received_at) VALUES (:e, :p, :t)"), batch)


def measure(env_file: Path) -> tuple[float, float, int]:
    code, peak_kib, wall, out, err = common.run_command(env_file, output=subprocess.PIPE)
    if code not in (0, 1):  # 1: random data can leave a busy channel quiet for an hour
        raise SystemExit(f"the script exited {code}: {out} {err}")
    return wall, peak_kib / 1024, code


def bench(kind: str, server, folder: Path) -> list[str]:
    url = server.new_database()
    now = datetime.now(timezone.utc)
    fill(url, kind, ROWS, now - timedelta(days=DAYS), now - timedelta(minutes=20), 0)
    state = folder / f"{kind}-state.json"
    env_file = common.write_env(
        folder / f"{kind}.env", SIM.url, LOG_FILE=folder / f"{kind}.log", STATE_FILE=state,
        ACTIVITY_DB=url, ACTIVITY_QUERY=SQLITE_QUERY if kind == "sqlite" else QUERY,
        ACTIVITY_TIMEOUT=120, VERIFY_SECONDS=0)
    first = measure(env_file)
    learned = json.loads(state.read_text())["activity"]
    counted = sum(int(n) for c in learned["channels"].values()
                  for n in c["counts"].split(",") if n)
    assert counted == ROWS, (counted, ROWS)
    fill(url, kind, ROWS // (DAYS * 96), now - timedelta(minutes=19), now, 1)
    later = measure(env_file)
    size = state.stat().st_size
    return [f"| {kind} | first (28 days, {ROWS:,} rows) | {first[0]:.2f} | {first[1]:.1f} | "
            f"{size / 1024:.0f} |",
            f"| {kind} | later ({ROWS // (DAYS * 96)} new rows) | {later[0]:.2f} | "
            f"{later[1]:.1f} | {size / 1024:.0f} |"]


if __name__ == "__main__":
    SIM = common.connected_simulator(f"ch{number}" for number in range(CHANNELS))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "mariadb"):
            server = databases.start(kind)
            try:
                rows += bench(kind, server, Path(tmp))
            finally:
                server.stop()
    SIM.stop()
    print(f"{CHANNELS} channels, {ROWS:,} inbound rows over {DAYS} days; Python "
          f"{sys.version.split()[0]}\n")
    print("| database | run | wall (s) | max RSS (MB) | state file (KB) |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))
