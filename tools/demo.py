#!/usr/bin/env python3
"""Shows one repair end to end: a simulated gateway with a disconnected session, the real script
run against it as cron would, the report it prints and the log line it writes, then a second run
that finds everything connected."""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gateway_simulator import GatewaySimulator

LOG = ROOT / "logs" / "demo-healthcheck-sessions.log"
STATE = ROOT / "logs" / "demo-healthcheck-state.json"  # not the real run's state


def run(env_file: Path, *args: str) -> int:
    command = [sys.executable, str(ROOT / "healthcheck_sessions.py"), "--env-file", str(env_file),
               *args]
    print(f"\n$ python3 healthcheck_sessions.py {' '.join(args)}".rstrip())
    done = subprocess.run(command, check=False)
    print(f"(exit status {done.returncode})")
    return done.returncode


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", default="wrapper",
                        choices=["wrapper", "waha", "evolution", "wppconnect"],
                        help="which gateway's simulator to run against (default: wrapper)")
    gateway = parser.parse_args(argv).gateway
    if gateway == "wrapper":
        sim = GatewaySimulator(secret="demo-secret-not-a-real-one")
        sim.add_channel("pixel12digital", "connected")
        sim.add_channel("imobsites", "disconnected", "reconnect")
        settings = f"WPP_GATEWAY_BASE_URL={{url}}\nWPP_GATEWAY_SECRET={sim.secret}\n"
        story = "pixel12digital connected, imobsites disconnected"
    else:
        from backend_simulators import SIMULATORS
        sim = SIMULATORS[gateway](secret="demo-key-not-a-real-one")
        down = {"waha": ("STOPPED", "recover"), "evolution": ("close",),
                "wppconnect": ("CLOSED", False, "recover")}[gateway]
        up = {"waha": ("WORKING",), "evolution": ("open",),
              "wppconnect": ("CONNECTED", True)}[gateway]
        add = sim.add_instance if gateway == "evolution" else sim.add_session
        add("pixel12digital", *up)
        add("imobsites", *down)
        settings = (f"HEALTHCHECK_GATEWAY={gateway}\nHEALTHCHECK_GATEWAY_URL={{url}}\n"
                    f"HEALTHCHECK_GATEWAY_KEY={sim.secret}\n")
        story = f"pixel12digital {up[0]}, imobsites {down[0]}"
    sim.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            env_file = Path(folder) / ".env"
            env_file.write_text(settings.format(url=sim.url) +
                                f"HEALTHCHECK_LOG_FILE={LOG}\n"
                                f"HEALTHCHECK_STATE_FILE={STATE}\n"
                                # Check the kick after 1 s instead of 30, for the demo.
                                f"HEALTHCHECK_VERIFY_SECONDS=1\n")
            env_file.chmod(0o600)
            print(f"{gateway} simulator on {sim.url}: {story}.")
            first = run(env_file)
            print(f"\nThe log ({LOG.relative_to(ROOT)}) now ends with:")
            print("".join(LOG.read_text().splitlines(keepends=True)[-3:]), end="")
            second = run(env_file, "--verbose")
    finally:
        sim.stop()
    calls = ", ".join(f"{sum(1 for r in sim.requests if r['endpoint'] == e)} {e}"
                      for e in sim.ENDPOINTS if any(r["endpoint"] == e for r in sim.requests))
    print(f"\nThe simulator received: {calls}.")
    return 0 if (first, second) == (1, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
