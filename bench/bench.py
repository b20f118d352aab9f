#!/usr/bin/env python3
"""Benchmark: the real script against the gateway simulator with injected latency.

Prints a Markdown table: for 10, 100 and 500 channels (40% not connected), list latency 1 s,
kick latency 0.5 s, HEALTHCHECK_WORKERS 1, 4 and 16: wall time, the ideal
(list latency + ceil(down / workers) * kick latency), their ratio and the child's peak memory
(max RSS). Then an all-connected run of 2 channels without latency, as the one-file build and
as the script with its package (with and without the package's bytecode cache), against the
floor, `python -c "import requests"`. Not a test: figures for docs/performance.md.

    .venv/bin/python bench/bench.py            # the full table (about 3 minutes)
    .venv/bin/python bench/bench.py --quick    # 10 and 100 channels only
    .venv/bin/python bench/bench.py --floor    # the all-connected rows only
"""

import argparse
import compileall
import math
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Optional

import common  # puts tests/support (the simulators) on sys.path
from gateway_simulator import GatewaySimulator
from peak_memory import run_measured

LIST_LATENCY = 1.0
KICK_LATENCY = 0.5


def run_script(env_file: Path, *args: str, command: Path = common.COMMAND,
               env: Optional[dict] = None):
    """Run the real command once; return (wall seconds, exit status, its own max RSS in MB)."""
    code, peak_kib, wall, _, _ = common.run_command(env_file, *args, command=command, env=env)
    return wall, code, peak_kib / 1024


def time_command(command):
    """Wall seconds of a command, measured like the script's (same launcher)."""
    return run_measured(command)[2]


def write_env(folder: Path, url: str, workers: int) -> Path:
    # VERIFY_SECONDS=0: the kick phase is measured, not the 30 s wait before verification.
    return common.write_env(folder / f"bench-{workers}.env", url, WORKERS=workers,
                            LOG_FILE=folder / "bench.log", VERIFY_SECONDS=0)


def latency_row(folder: Path, channels: int, workers: int) -> dict:
    down = round(channels * 0.4)
    sim = GatewaySimulator(secret=common.SECRET)
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


def package_copy(folder: Path, cached: bool) -> Path:
    """Copy the command and its package as a user does; return the command's path.

    `cached`: with the bytecode cache (`__pycache__`) that the first run writes when the folder
    is writable; otherwise with none, as a run finds it when it cannot write one (a folder the
    cron user does not own, PYTHONDONTWRITEBYTECODE=1): every run then compiles the package.
    The runs are timed on copies so that neither the checkout's cache nor the environment this
    benchmark runs in (PYTHONDONTWRITEBYTECODE may be set) decides which case is measured.
    """
    target = folder / ("cached" if cached else "uncached")
    shutil.copytree(common.ROOT / "healthcheck", target / "healthcheck",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(common.COMMAND, target)
    if cached:
        compileall.compile_dir(target / "healthcheck", quiet=1)
    return target / "healthcheck_sessions.py"


def floor_rows(folder: Path, repeats: int = 15) -> dict:
    """Wall times of an all-connected run (package with and without its bytecode cache, .pyz)
    and of the floor: the median and the fastest of `repeats` interleaved runs each."""
    sys.path.insert(0, str(common.ROOT / "tools"))
    from build_pyz import build
    commands = {"cached": package_copy(folder, cached=True),
                "uncached": package_copy(folder, cached=False),
                "pyz": build(folder / "healthcheck_sessions.pyz")}
    no_cache = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    sim = common.connected_simulator(["pixel12digital", "imobsites"])
    runs = {name: [] for name in commands}
    try:
        env_file = write_env(folder, sim.url, 4)
        for name, command in commands.items():  # warm the disk cache
            run_script(env_file, command=command, env=no_cache)
        floors = []
        for _ in range(repeats):  # interleaved, so all see the same machine noise
            for name, command in commands.items():
                runs[name].append(run_script(env_file, command=command, env=no_cache))
            floors.append(time_command([sys.executable, "-c", "import requests"]))
    finally:
        sim.stop()
    if any(code != 0 for done in runs.values() for _, code, _ in done):
        raise SystemExit("the all-connected run did not exit 0")
    row = {name: (statistics.median(w for w, _, _ in done), min(w for w, _, _ in done))
           for name, done in runs.items()}
    row["floor"] = (statistics.median(floors), min(floors))
    row["rss"] = max(rss for done in runs.values() for _, _, rss in done)
    return row


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
        floor_median, floor_min = row["floor"]
        print(f"\nall connected, 2 channels, no latency, 15 runs each interleaved; max RSS "
              f"{row['rss']:.1f} MB (target: 1.2 x the floor)\n")
        print("| command | median (s) | x the floor | fastest (s) | x the floor |")
        print("|---|---:|---:|---:|---:|")
        print(f"| floor, `python -c \"import requests\"` | {floor_median:.3f} | 1.00 "
              f"| {floor_min:.3f} | 1.00 |")
        for name, label in (("pyz", "`healthcheck_sessions.pyz` (bytecode inside, unchecked)"),
                            ("cached", "`healthcheck_sessions.py` + `healthcheck/` (bytecode "
                                       "cached in `__pycache__`)"),
                            ("uncached", "the same, no bytecode cache (compiled on every run)")):
            median, fastest = row[name]
            print(f"| {label} | {median:.3f} | {median / floor_median:.2f} | {fastest:.3f} "
                  f"| {fastest / floor_min:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
