#!/usr/bin/env python3
"""Benchmark: the state file of 6,000 channels with an activity history, and the runs' time.

6,000 channels, all connected, in an SQLite activity table of two shapes: one message per
channel (what made 1.1.0's state 4.7 MB), and two messages per channel 27 days apart (the
costliest history per channel, cut to fit the state's 4 MB). The real script runs three times
against the gateway simulator; each later run must read the state the one before wrote. Prints,
per run, the state file's size, how many channels' history it holds, the wall time and the
script's peak memory (max RSS). Not a test: figures for the README.

    .venv/bin/python bench/state_bench.py
"""

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import common  # puts tests/support (the simulators) on sys.path
import sqlalchemy
from gateway_simulator import GatewaySimulator

CHANNELS = 6000
RUNS = 3
SHAPES = {"one message each": (0.01,), "two messages 27 days apart": (27, 0.01)}


def bench(sim: GatewaySimulator, shape: str, folder: Path) -> list[str]:
    database = folder / "activity.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE inbound (channel TEXT, "
                                           "received_at TEXT)"))
        connection.execute(sqlalchemy.text("CREATE INDEX received ON inbound (received_at)"))
        connection.execute(sqlalchemy.text("INSERT INTO inbound VALUES (:c, :t)"), [
            {"c": f"ch{n:05}", "t": (now - timedelta(days=days)).astimezone()
             .replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")}
            for n in range(CHANNELS) for days in SHAPES[shape]])
    engine.dispose()
    log, state = folder / "state.log", folder / "state.json"
    env_file = common.write_env(
        folder / "state.env", sim.url, LOG_FILE=log, STATE_FILE=state,
        ACTIVITY_DB=f"sqlite:///{database}",
        ACTIVITY_QUERY="SELECT channel, received_at FROM inbound WHERE received_at > :since",
        VERIFY_SECONDS=0)
    rows = []
    for run in range(1, RUNS + 1):
        code, peak_kib, wall, out, err = common.run_command(env_file, output=subprocess.PIPE)
        if code != 0 or "unreadable" in (log.read_text() if log.exists() else ""):
            raise SystemExit(f"run {run} exited {code}: {out} {err}")
        kept = len(json.loads(state.read_text())["activity"]["channels"])
        rows.append(f"| {shape} | {run} | {state.stat().st_size / 1024:,.0f} | {kept:,} | "
                    f"{wall:.2f} | {peak_kib / 1024:.1f} |")
    return rows


if __name__ == "__main__":
    SIM = common.connected_simulator(f"ch{number:05}" for number in range(CHANNELS))
    rows = []
    try:
        for shape in SHAPES:
            with tempfile.TemporaryDirectory() as tmp:
                rows += bench(SIM, shape, Path(tmp))
    finally:
        SIM.stop()
    print(f"{CHANNELS:,} channels, all connected, SQLite activity; Python "
          f"{sys.version.split()[0]}\n")
    print("| history | run | state file (KB) | channels with history | wall (s) | max RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
