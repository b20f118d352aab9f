"""The entry point: checks the two packages before anything imports them."""

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Optional

from .constants import DEFAULT_LOG_FILE, SCRIPT_DIR, UNKNOWN, in_venv, install_hint
from .files import append_log


def _new_run_id() -> str:
    return os.urandom(4).hex()


def _report_missing_package(package: str) -> int:
    """Say which package this Python lacks and how to fix it; log it where the log would be."""
    name = {"dotenv": "python-dotenv"}.get(package, package)
    if in_venv():
        fix = (f"install it into that venv ({install_hint('-r requirements.txt')}), or point "
               f"cron at the Python of the venv that has it (.venv/bin/python "
               f"healthcheck_sessions.py)")
    else:  # cron's system python3
        fix = f"give the script a venv: {install_hint('-r requirements.txt')}"
    line = (f"WHATSAPP SESSIONS UNKNOWN - the package {name} is not installed for "
            f"{sys.executable}: {fix}")
    print(line, flush=True)
    try:
        append_log(SCRIPT_DIR / DEFAULT_LOG_FILE, _new_run_id(), [(UNKNOWN, line)])
    except OSError:
        pass
    return UNKNOWN


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Run one check and return its exit status; a missing package is one line, not a traceback."""
    for package in ("requests", "dotenv"):
        try:
            importlib.import_module(package)
        except ImportError as exc:  # cron's python3 is often not the one the packages went into
            return _report_missing_package(exc.name or package)
    from . import cli  # imports both
    return cli.main(argv)
