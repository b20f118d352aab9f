#!/usr/bin/env python3
"""Benchmark: the real script against the gateway simulator with injected latency.

Prints a Markdown table: for 10, 100 and 500 channels (40% not connected), list latency 1 s,
kick latency 0.5 s, HEALTHCHECK_WORKERS 1, 4 and 16: wall time, the ideal
(list latency + ceil(down / workers) * kick latency), their ratio and the child's peak memory
(max RSS). Then an all-connected run of 2 channels without latency, as the script and as the
one-file build, against the floor, `python -c "import requests"`. Not a test: figures for the README's performance section.

    .venv/bin/python bench/bench.py            # the full table (about 3 minutes)
    .venv/bin/python bench/bench.py --quick    # 10 and 100 channels only
    .venv/bin/python bench/bench.py --floor    # the all-connected rows only
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gateway_simulator import GatewaySimulator
from peak_memory import run_measured

SECRET = "bench-secret-0123456789"
LIST_LATENCY = 1.0
KICK_LATENCY = 0.5


def run_script(env_file: Path, *args: str, command: Optional[Path] = None):
    """Run the real command once; return (wall seconds, exit status, its own max RSS in MB)."""
    command = [sys.executable, str(command or ROOT / "healthcheck_sessions.py"), "--env-file",
               str(env_file), *args]
    code, peak_kib, wall, _, _ = run_measured(command, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
    return wall, code, peak_kib / 1024


def time_command(command):
    """Wall seconds of a command, measured like the script's (same launcher)."""
    return run_measured(command)[2]


def write_env(folder: Path, url: str, workers: int) -> Path:
    env_file = folder / f"bench-{workers}.env"
    env_file.write_text(f"WPP_GATEWAY_BASE_URL={url}\nWPP_GATEWAY_SECRET={SECRET}\n"
                        f"HEALTHCHECK_WORKERS={workers}\nHEALTHCHECK_LOG_FILE={folder}/bench.log\n"
                        # The kick phase is measured, not the 30 s wait before verification.
                        f"HEALTHCHECK_VERIFY_SECONDS=0\n")
    return env_file


def latency_row(folder: Path, channels: int, workers: int) -> dict:
    down = round(channels * 0.4)
    sim = GatewaySimulator(secret=SECRET)
    for number in range(channels):
        sim.add_channel(f"channel-{number:04d}", "disconnected" if number < down else "connected",
                        "reconnect")
    sim.latency.update(list=LIST_LATENCY, qr=KICK_LATENCY, start=KICK_LATENCY)
    sim.start()
    try:
        wall, code, rss = run_script(write_env(folder, sim.url, workers))
    finally:
        sim.stop()
    kicks = sim.count("qr")
    if kicks != down or code != 1:
        raise SystemExit(f"{channels} channels, {workers} workers: the simulator received {kicks} "
                         f"kicks for {down} channels down (exit status {code})")
    ideal = LIST_LATENCY + math.ceil(down / workers) * KICK_LATENCY
    target = 1.2 * ideal + 0.5
    return {"channels": channels, "down": down, "workers": workers, "wall": wall, "ideal": ideal,
            "ratio": wall / ideal, "rss": rss, "target": target,
            "meets": "yes" if workers == 1 or wall <= target else "NO"}


def floor_rows(folder: Path, repeats: int = 15):
    """Median wall time of an all-connected run, as the script and as the .pyz, and the floor."""
    sys.path.insert(0, str(ROOT / "tools"))
    from build_pyz import build
    archive = build(folder / "healthcheck_sessions.pyz")
    sim = GatewaySimulator(secret=SECRET)
    sim.add_channel("pixel12digital", "connected")
    sim.add_channel("imobsites", "connected")
    sim.start()
    try:
        env_file = write_env(folder, sim.url, 4)
        run_script(env_file)  # warm the disk cache and the package's bytecode cache
        run_script(env_file, command=archive)
        scripts, archives, floors = [], [], []
        for _ in range(repeats):  # interleaved, so all see the same machine noise
            scripts.append(run_script(env_file))
            archives.append(run_script(env_file, command=archive))
            floors.append(time_command([sys.executable, "-c", "import requests"]))
    finally:
        sim.stop()
    if any(code != 0 for _, code, _ in scripts + archives):
        raise SystemExit("the all-connected run did not exit 0")
    return {"script": statistics.median(wall for wall, _, _ in scripts),
            "pyz": statistics.median(wall for wall, _, _ in archives),
            "floor": statistics.median(floors),
            "rss": max(rss for _, _, rss in scripts + archives)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 channels only")
    parser.add_argument("--floor", action="store_true", help="only the all-connected runs")
    args = parser.parse_args()
    sizes = (10, 100) if args.quick else (10, 100, 500)
    with tempfile.TemporaryDirectory() as folder:
        print(f"list latency {LIST_LATENCY:g} s, kick latency {KICK_LATENCY:g} s, "
              f"40% of channels not connected; Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs\n")
        print("| channels | down | workers | wall (s) | ideal (s) | wall/ideal | max RSS (MB) "
              "| within 1.2 x ideal + 0.5 s |")
        print("|---:|---:|---:|---:|---:|---:|---:|:---:|")
        for channels in () if args.floor else sizes:
            for workers in (1, 4, 16):
                row = latency_row(Path(folder), channels, workers)
                meets = "n/a" if workers == 1 else row["meets"]
                print(f"| {channels} | {row['down']} | {workers} | {row['wall']:.2f} "
                      f"| {row['ideal']:.2f} | {row['ratio']:.2f} | {row['rss']:.1f} | {meets} |",
                      flush=True)
        row = floor_rows(Path(folder))
        print(f"\nall connected, 2 channels, no latency (median of 15), max RSS {row['rss']:.1f} MB:")
        print(f"- healthcheck_sessions.py (package, bytecode cached): {row['script']:.3f} s, "
              f"{row['script'] / row['floor']:.2f} x the floor (target 1.2)")
        print(f"- healthcheck_sessions.pyz (bytecode inside): {row['pyz']:.3f} s, "
              f"{row['pyz'] / row['floor']:.2f} x the floor (target 1.2)")
        print(f"- floor, python -c 'import requests': {row['floor']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
