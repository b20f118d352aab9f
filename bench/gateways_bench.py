#!/usr/bin/env python3
"""Benchmark: one run against each gateway's simulator, every call 50 ms slow.

200 sessions, 20 of them down (stopped), HEALTHCHECK_WORKERS 4 and 16. Evolution and
WPPConnect-Server need calls per session to learn its state (WPPConnect a token too); those
reads run concurrently like the revives. Prints the wall time against the ideal
(calls / workers x latency, the calls counted by the simulator) and the ratio.
Not a test: figures for the README.

    .venv/bin/python bench/gateways_bench.py
"""

import sys
import tempfile
from pathlib import Path

import common  # puts tests/support (the simulators) on sys.path
from backend_simulators import SIMULATORS

KEY = "bench-key-0123456789"
SESSIONS, DOWN, LATENCY = 200, 20, 0.05


def simulator(kind: str):
    sim = SIMULATORS[kind](secret=KEY)
    for number in range(SESSIONS):
        down = number < DOWN
        if kind == "waha":
            sim.add_session(f"s{number:03}", "STOPPED" if down else "WORKING")
        elif kind == "evolution":
            sim.add_instance(f"s{number:03}", "close" if down else "open")
        else:
            sim.add_session(f"s{number:03}", "CLOSED" if down else "CONNECTED", not down)
    for endpoint in sim.latency:
        sim.latency[endpoint] = LATENCY
    return sim.start()


def row(kind: str, workers: int, folder: Path) -> str:
    sim = simulator(kind)
    env_file = common.write_env(folder / f"{kind}-{workers}.env", sim.url, KEY, GATEWAY=kind,
                                WORKERS=workers, LOG_FILE=folder / f"{kind}-{workers}.log",
                                STATE_FILE=folder / f"{kind}-{workers}.json", VERIFY_SECONDS=0)
    try:
        code, peak, wall, _, _ = common.run_command(env_file)
    finally:
        sim.stop()
    calls = len(sim.requests)
    ideal = calls / workers * LATENCY
    verdict = "yes" if wall <= 1.2 * ideal + 0.5 else "NO"
    return (f"| {kind} | {workers} | {calls} | {wall:.2f} | {ideal:.2f} | {wall / ideal:.2f} | "
            f"{peak / 1024:.1f} | exit {code} | {verdict} |")


if __name__ == "__main__":
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("waha", "evolution", "wppconnect"):
            for workers in (4, 16):
                rows.append(row(kind, workers, Path(tmp)))
    print(f"{SESSIONS} sessions, {DOWN} down, {LATENCY * 1000:.0f} ms per call; Python "
          f"{sys.version.split()[0]}\n")
    print("| gateway | workers | calls | wall (s) | ideal (s) | wall/ideal | max RSS (MB) | "
          "run | within 1.2 x ideal + 0.5 s |")
    print("|---|---:|---:|---:|---:|---:|---:|---|:---:|")
    print("\n".join(rows))
