"""What the benchmarks share: the command, the test simulators on the path, one timed run.

Each benchmark imports it before the simulators: it puts tests/support (the gateway simulators,
the database servers, the memory meter) on sys.path.
"""

import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ROOT / "healthcheck_sessions.py"
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gateway_simulator import GatewaySimulator
from peak_memory import run_measured

#: The key the simulators are started with.
SECRET = "bench-secret-0123456789"


def connected_simulator(names) -> GatewaySimulator:
    """The wrapper's simulator, started, listing these channels, all connected."""
    sim = GatewaySimulator(secret=SECRET)
    for name in names:
        sim.add_channel(name, "connected")
    return sim.start()


def write_env(path: Path, url: str, key: str = SECRET, **settings) -> Path:
    """Write the settings file of a run against the simulator at `url`; return its path.

    The address and key go under the wrapper's names, as in the operator's .env
    (WPP_GATEWAY_BASE_URL, WPP_GATEWAY_SECRET), or, with GATEWAY=kind, HEALTHCHECK_GATEWAY_URL
    and HEALTHCHECK_GATEWAY_KEY; then HEALTHCHECK_<NAME>=value for each keyword. The file is
    0600, as the command wants one that holds the gateway's key.
    """
    names = ("WPP_GATEWAY_BASE_URL", "WPP_GATEWAY_SECRET") if settings.get("GATEWAY") is None \
        else ("HEALTHCHECK_GATEWAY_URL", "HEALTHCHECK_GATEWAY_KEY")
    lines = [f"{names[0]}={url}", f"{names[1]}={key}"]
    lines += [f"HEALTHCHECK_{name}={value}" for name, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def run_command(env_file: Path, *args: str, command: Path = COMMAND,
                output: int = subprocess.DEVNULL, env: Optional[dict] = None):
    """Run the command once with these settings; return (exit status, its own peak RSS in KiB,
    wall seconds from spawn to exit, stdout, stderr): stdout and stderr are None unless
    `output` is subprocess.PIPE. `env`: the command's environment (default: this one)."""
    return run_measured([sys.executable, str(command), "--env-file", str(env_file), *args],
                        stdout=output, stderr=output, env=env)
