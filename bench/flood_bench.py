#!/usr/bin/env python3
"""Benchmark: what a hostile gateway's flood costs on disk and on the wire.

Two floods, eight runs each, new ids every run, a QR on every kick, and a webhook that answers
500 so every alert is kept for the next run:
  - 4,000 channel ids of 2,000 characters (refused as malformed: never kicked nor stored);
  - 4,000 channel ids of 195 characters (valid: each is kicked and issues a QR).
Prints, per run, the state file's size, the log bytes and lines the run wrote, the largest
alert POST, and the undelivered alerts kept. Not a test: figures for the README.

    .venv/bin/python bench/flood_bench.py
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import common  # puts tests/support (the simulators) on sys.path
from gateway_simulator import GatewaySimulator

sys.path.insert(0, str(common.ROOT / "tests"))
from conftest import Recorder  # the tests' webhook receiver

CHANNELS = 4000
RUNS = 8


def flood(id_chars: int, folder: Path) -> list[str]:
    sim = GatewaySimulator(secret=common.SECRET)
    sim.start()
    hook = Recorder()
    hook.status = 500
    log, state = folder / "flood.log", folder / "state.json"
    env_file = common.write_env(
        folder / "flood.env", sim.url, LOG_FILE=log, STATE_FILE=state, VERIFY_SECONDS=0,
        WORKERS=16, DEADLINE=300, QR_TIMEOUT=10, ALERT_WEBHOOK_URL=f"{hook.url}/hook")
    rows = []
    try:
        for run in range(1, RUNS + 1):
            sim.channels.clear()
            for number in range(CHANNELS):
                name = f"r{run}-{number:04}-"
                sim.add_channel(name + "x" * (id_chars - len(name)), "qr_required", "qr")
            before_bytes = log.stat().st_size if log.exists() else 0
            before_lines = len(log.read_text().splitlines()) if log.exists() else 0
            hook.requests.clear()
            subprocess.run([sys.executable, str(common.COMMAND), "--env-file", str(env_file)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                           timeout=600)
            kept = json.loads(state.read_text()).get("pending_alerts", [])
            largest = max((len(r["body"]) for r in hook.requests), default=0)
            rows.append(f"| {id_chars} | {run} | {sim.count('qr'):,} | "
                        f"{state.stat().st_size / 1024:.0f} KB | "
                        f"{(log.stat().st_size - before_bytes) / 1024:.0f} KB / "
                        f"{len(log.read_text().splitlines()) - before_lines} lines | "
                        f"{largest / 1024:.1f} KB | {len(kept)}, "
                        f"{len(json.dumps(kept)) / 1024:.0f} KB |")
            sim.requests.clear()
    finally:
        hook.stop()
        sim.stop()
    return rows


if __name__ == "__main__":
    rows = []
    for id_chars in (2000, 195):
        with tempfile.TemporaryDirectory() as tmp:
            rows += flood(id_chars, Path(tmp))
    print(f"{CHANNELS:,} channels, new ids every run, a QR on every kick, webhook answering 500; "
          f"Python {sys.version.split()[0]}\n")
    print("| id length | run | kicks | state file | log written | largest alert | kept alerts |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
