"""Many channels inside the cron window: concurrent kicks, order, pool and start-up (scale issue).

Speed itself is measured by bench/bench.py, never here: these tests check behaviour only.
The deadline with concurrent kicks is in test_bounds.py.
"""

import subprocess
import sys

from conftest import ROOT


def test_kicks_run_concurrently_up_to_the_worker_limit(run_check, gateway):
    for number in range(8):
        gateway.add_channel(f"c{number}", "disconnected")
    gateway.latency["qr"] = 1.0
    run = run_check(env={"HEALTHCHECK_WORKERS": "4"})
    assert run.code == 1
    assert gateway.count("qr") == 8
    assert gateway.max_in_flight["qr"] == 4


def test_one_worker_kicks_one_after_another(run_check, gateway):
    for number in range(3):
        gateway.add_channel(f"c{number}", "disconnected")
    gateway.latency["qr"] = 0.2
    run_check(env={"HEALTHCHECK_WORKERS": "1"})
    assert gateway.count("qr") == 3
    assert gateway.max_in_flight["qr"] == 1


def test_report_keeps_the_gateways_order_whatever_finishes_first(run_check, gateway):
    gateway.channels.clear()
    for name, delay in (("slow", 0.6), ("middle", 0.3), ("fast", 0.0)):
        gateway.add_channel(name, "disconnected")
        gateway.channel_latency[name] = delay
    run = run_check(env={"HEALTHCHECK_WORKERS": "4"})
    channel_lines = [l for l in run.stdout.splitlines() if l.startswith("channel ")]
    assert [l.split(":")[0] for l in channel_lines] == ["channel slow", "channel middle",
                                                        "channel fast"]
    log_lines = [l for l in run.log.splitlines() if "] channel " in l]
    assert ["slow" in log_lines[0], "middle" in log_lines[1], "fast" in log_lines[2]] == [True] * 3


def test_one_connection_pool_is_reused_across_calls(run_check, gateway):
    for number in range(10):
        gateway.add_channel(f"c{number}", "disconnected")
    run_check(env={"HEALTHCHECK_WORKERS": "1"})
    assert gateway.count("qr") == 10
    assert gateway.connections() == 1


def test_importing_the_script_loads_no_optional_module():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import healthcheck.cli; "
            "print(sorted(m for m in ('cryptography', 'smtplib', 'subprocess', 'shlex', 'fcntl', "
            "'concurrent.futures', 'asyncio', 'dotenv.ipython') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"
