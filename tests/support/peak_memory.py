"""Runs a command and reports its own peak memory (max RSS), for the benchmark and one test.

On Linux a child's max RSS starts at its parent's RSS at fork time, so measuring straight from
a large process (pytest, the benchmark) reports the parent. A tiny launcher process spawns the
command instead and reads the command's max RSS with wait4.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
open(sys.argv[1], "w").write(f"{usage.ru_maxrss} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(command, **popen_kwargs):
    """Run `command`; return (exit status, peak RSS in KiB, wall seconds, stdout, stderr).

    The wall time is the command's own, from spawn to exit, without the launcher's start-up.
    """
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "measured"
        done = subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *command],
                              check=False, **popen_kwargs)
        peak, wall = report.read_text().split()
        return done.returncode, int(peak), float(wall), done.stdout, done.stderr
