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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from conftest import Recorder
from gateway_simulator import GatewaySimulator

SECRET = "bench-secret-0123456789"
CHANNELS = 4000
RUNS = 8


def flood(id_chars: int, folder: Path) -> list[str]:
    sim = GatewaySimulator(secret=SECRET)
    sim.start()
    hook = Recorder()
    hook.status = 500
    log, state = folder / "flood.log", folder / "state.json"
    env_file = folder / "flood.env"
    env_file.write_text(f"WPP_GATEWAY_BASE_URL={sim.url}\nWPP_GATEWAY_SECRET={SECRET}\n"
                        f"HEALTHCHECK_LOG_FILE={log}\nHEALTHCHECK_STATE_FILE={state}\n"
                        f"HEALTHCHECK_VERIFY_SECONDS=0\nHEALTHCHECK_WORKERS=16\n"
                        f"HEALTHCHECK_DEADLINE=300\nHEALTHCHECK_QR_TIMEOUT=10\n"
                        f"HEALTHCHECK_ALERT_WEBHOOK_URL={hook.url}/hook\n")
    env_file.chmod(0o600)
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
            subprocess.run([sys.executable, str(ROOT / "healthcheck_sessions.py"),
                            "--env-file", str(env_file)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, timeout=600)
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
