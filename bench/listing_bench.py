#!/usr/bin/env python3
"""Benchmark: a 200,000-channel listing (about 10 MB, within the 10 MB cap) against `-t`.

Prints a Markdown table: for the listing all connected and all not connected (each kick
answered at once), with `-t 20` and `-t 60`, and once with `--json` (every channel in one JSON
object, each string redacted): wall time from spawn to exit, exit status, kicks
the simulator received, and the metrics file's size. The listing is encoded once and served
as it is. Not a test: figures for the README's performance section.

    .venv/bin/python bench/listing_bench.py    # about 2 minutes
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gateway_simulator import Fault, GatewaySimulator
from peak_memory import run_measured

SECRET = "bench-secret-0123456789"
CHANNELS = 200_000


def listing(down: bool) -> bytes:
    status = "disconnected" if down else "connected"
    return json.dumps({"success": True, "channels": [{"id": f"channel-{n:06d}", "status": status}
                                                     for n in range(CHANNELS)]}).encode()


def row(folder: Path, down: bool, deadline: int, *args: str) -> dict:
    sim = GatewaySimulator(secret=SECRET)
    sim.set_fault("list", Fault("response", 200, listing(down)))
    sim.set_fault("qr", Fault("response", 200, json.dumps({"success": True,
                                                           "status": "connected"})))
    sim.start()
    metrics = folder / "whatsapp.prom"
    env_file = folder / "listing.env"
    env_file.write_text(f"WPP_GATEWAY_BASE_URL={sim.url}\nWPP_GATEWAY_SECRET={SECRET}\n"
                        f"HEALTHCHECK_LOG_FILE={folder}/logs/bench.log\n"
                        f"HEALTHCHECK_METRICS_FILE={metrics}\nHEALTHCHECK_WORKERS=16\n"
                        f"HEALTHCHECK_VERIFY_SECONDS=0\n")
    env_file.chmod(0o600)
    try:
        code, peak_kib, wall, _, _ = run_measured(
            [sys.executable, str(ROOT / "healthcheck_sessions.py"), "--env-file", str(env_file),
             "-t", str(deadline), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        sim.stop()
    size = metrics.stat().st_size if metrics.exists() else 0
    for leftover in (folder / "logs").glob("*"):
        leftover.unlink()  # each row starts without state
    return {"wall": wall, "code": code, "kicks": sim.count("qr"), "metrics": size,
            "rss": peak_kib / 1024}


def main() -> int:
    print(f"{CHANNELS:,} channels, each kick answered at once, 16 workers; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| listing | -t | output | wall (s) | exit | kicks made | metrics file (KB) "
          "| max RSS (MB) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for down, deadline, args in ((False, 20, ()), (True, 20, ()), (True, 60, ()),
                                     (True, 20, ("--json",))):
            result = row(Path(folder), down, deadline, *args)
            print(f"| {'all not connected' if down else 'all connected'} | {deadline} "
                  f"| {' '.join(args) or 'text'} "
                  f"| {result['wall']:.1f} | {result['code']} | {result['kicks']:,} "
                  f"| {result['metrics'] / 1024:.0f} | {result['rss']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
