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
import sys
import tempfile
from pathlib import Path

import common  # puts tests/support (the simulators) on sys.path
from gateway_simulator import Fault, GatewaySimulator

CHANNELS = 200_000


def listing(down: bool) -> bytes:
    status = "disconnected" if down else "connected"
    return json.dumps({"success": True, "channels": [{"id": f"channel-{n:06d}", "status": status}
                                                     for n in range(CHANNELS)]}).encode()


def row(folder: Path, down: bool, deadline: int, *args: str) -> dict:
    sim = GatewaySimulator(secret=common.SECRET)
    sim.set_fault("list", Fault("response", 200, listing(down)))
    sim.set_fault("qr", Fault("response", 200, json.dumps({"success": True,
                                                           "status": "connected"})))
    sim.start()
    metrics = folder / "whatsapp.prom"
    env_file = common.write_env(folder / "listing.env", sim.url,
                                LOG_FILE=folder / "logs" / "bench.log", METRICS_FILE=metrics,
                                WORKERS=16, VERIFY_SECONDS=0)
    try:
        code, peak_kib, wall, _, _ = common.run_command(env_file, "-t", str(deadline), *args)
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
