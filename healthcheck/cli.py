"""The command line: arguments, signals, output and the exit status."""

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Optional

from .constants import (
    DEADLINE_RESERVE_FRACTION,
    DEADLINE_RESERVE_MAX,
    DEFAULT_ENV_FILE,
    DEFAULT_LOG_FILE,
    MAX_TRACEBACK_LINES,
    OK,
    PROGRAM,
    SCRIPT_DIR,
    STATE_NAMES,
    UNKNOWN,
    WARNING,
    __version__,
)
from .entry import _new_run_id
from .errors import HealthcheckError, RunInterrupted
from .files import RunLock, is_same_file, read_last_run
from .report import Report, judge_last_run
from .run import DryRun, Effects, RunContext, bug_report, interrupted_report, run_check
from .settings import Settings, _EnvSource, load_settings
from .text import Redactor, _redact_tree, clean_text, quote_untrusted


def show_status(settings: Settings, output: "_Output") -> int:
    """`--status`: print what the last cron run found; return its exit status (or why not)."""
    now = datetime.now().astimezone()
    try:
        last = read_last_run(settings.state_path)
    except HealthcheckError as exc:
        state, last = exc.state, None
        lines = [f"WHATSAPP SESSIONS {STATE_NAMES[state]} - {exc}"]
    else:
        state, lines = judge_last_run(last, now, settings.status_max_age_minutes)
    if output.as_json:
        print(json.dumps(_redact_tree({"state": STATE_NAMES[state], "exit_code": state,
                                       "lines": lines, "last_run": last}, output.redact),
                         ensure_ascii=True), flush=True)
    else:
        print(output.redact("\n".join(clean_text(line) for line in lines)), flush=True)
    return state


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise HealthcheckError(f"bad command line: {message} (see --help)")

    def format_help(self) -> str:
        # The settings table ends --help; read only for it (the table is a module of its own).
        from .reference import settings_help
        self.epilog = settings_help()
        return super().format_help()


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Return the parsed command line; a bad one raises HealthcheckError."""
    parser = _ArgumentParser(
        prog="healthcheck_sessions.py",
        description="Reconnects the WhatsApp sessions of a WPPConnect gateway that are not "
                    "connected. Silent and exit 0 when all are connected.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False)  # `--js` must not quietly mean --json
    parser.add_argument("--dry-run", action="store_true",
                        help="check and report, but make no reconnect call and write nothing")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of text")
    parser.add_argument("--force", action="store_true",
                        help="revive every channel that is not connected now, even one "
                             "waiting for a QR scan (whose revives otherwise back off)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also report when every channel is connected")
    parser.add_argument("--env-file", type=Path, metavar="PATH",
                        help=f"settings file (default: {DEFAULT_ENV_FILE})")
    parser.add_argument("--timeout", "-t", type=float, metavar="SECONDS",
                        help="this run's deadline in seconds, overriding HEALTHCHECK_DEADLINE; "
                             "set it below the timeout of whatever runs the script (Nagios "
                             "service_check_timeout, Monit)")
    parser.add_argument("--status", action="store_true",
                        help="only repeat what the last cron run found, read from its state "
                             "file (no gateway call, no database, no lock, nothing written); "
                             "CRITICAL when no run finished within "
                             "HEALTHCHECK_STATUS_MAX_AGE_MINUTES: the check for Nagios, Icinga "
                             "and Monit")
    parser.add_argument("--version", "-V", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if args.status and (args.dry_run or args.force):
        parser.error("--status only reads the last run; it cannot be combined with "
                     "--dry-run or --force")
    return args


class _Output:
    """Writes the report to stdout, warnings to stderr and events to the log, all redacted."""

    def __init__(self, as_json: bool, verbose: bool, redact: Redactor):
        self.as_json = as_json
        self.verbose = verbose
        self.redact = redact
        self.warnings: list[str] = []
        self.started = time.monotonic()

    def warn(self, message: str) -> None:
        """A line on stderr now (cron mails it), kept for the log too."""
        self.warnings.append(message)
        print(self.redact(f"{PROGRAM}: {message}"), file=sys.stderr, flush=True)

    def report(self, report: Report, stdout_is_log: bool) -> None:
        report.elapsed = time.monotonic() - self.started
        if self.as_json:
            # Redact each string before encoding: JSON escaping could hide a secret from it.
            print(json.dumps(_redact_tree(report.to_json(), self.redact), ensure_ascii=True),
                  flush=True)
            return
        if report.state == OK and not self.verbose:
            return  # cron mails any output: a healthy run stays silent
        if stdout_is_log and report.state != OK:
            return  # the same events were just appended to the log
        lines = report.lines()
        if report.state == OK:
            lines += [(OK, f"channel {quote_untrusted(c.id, 80)}: connected")
                      for c in report.channels if c.outcome is None]
        # Nagios reads everything after the first `|` as performance data.
        texts = [report.status_line()]
        head = f"WHATSAPP SESSIONS {STATE_NAMES[report.state]} - "
        # The status line was cut: say it whole, unless its whole text is one of the lines below
        # (a lone problem, such as a killed run's notice), which would then be said twice.
        if not texts[0].startswith(lines[0][1].replace("|", "/") + " | ") and \
                lines[0][1] not in {head + text for _, text in lines[1:]}:
            texts.append(lines[0][1].replace("|", "/"))
        texts += [text.replace("|", "/") for _, text in lines[1:]]
        print(self.redact("\n".join(texts)), flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one check; return the exit status."""
    run_id = _new_run_id()
    started = time.monotonic()
    raw_args = list(sys.argv[1:] if argv is None else argv)
    output = _Output("--json" in raw_args, verbose=False, redact=Redactor())
    # The one place --dry-run is looked at: it chooses what the run may do to the world.
    # --status writes nothing either: no log line, no ping.
    effects = DryRun() if "--dry-run" in raw_args or "--status" in raw_args else Effects()
    args = None
    try:
        args = parse_args(raw_args)
        output.verbose = args.verbose
        settings = load_settings(args.env_file)
        if args.timeout is not None:
            if not 0 < args.timeout < 86400:
                raise HealthcheckError(f"bad command line: --timeout must be a number of "
                                       f"seconds above 0, got {args.timeout:g} (see --help)")
            settings = dataclasses.replace(settings, deadline=args.timeout)
    except HealthcheckError as exc:
        report = Report(error=str(exc), error_state=exc.state, dry_run=effects.dry_run)
        # No settings, so the log named in them may be unknown: log where it most likely is.
        fallback = _fallback_settings(args.env_file if args else None)
        # A check that cannot run is a failed check.
        effects.ping(fallback, "/fail", report.lines()[0][1], time.monotonic() + 2,
                     _ping_run_id(fallback))
        _finish(report, fallback, run_id, output, effects)
        return report.state
    output.redact = settings.redact
    if args.status:
        return show_status(settings, output)

    hard_end = started + settings.deadline
    run = RunContext(run_id=run_id, started=started, hard_end=hard_end,
                     budget_end=hard_end - min(settings.deadline * DEADLINE_RESERVE_FRACTION,
                                               DEADLINE_RESERVE_MAX),
                     effects=effects, force=args.force, ping_rid=_ping_run_id(settings),
                     all_warnings=args.verbose or effects.dry_run)
    lock = RunLock(settings.lock_file)
    # Two configurations (two cron lines, two log folders) may share one state file: its own
    # lock keeps their runs from interleaving on it.
    state_lock = RunLock(settings.state_path.with_name(settings.state_path.name + ".lock"))
    locks = [lock, state_lock]
    for held in locks:
        try:
            if not effects.lock(held, run_id):
                what = "the log" if held is lock else "the state file"
                report = Report(error=f"another run is in progress (it holds {held.path}, "
                                      f"the lock of {what}); this run made no gateway call",
                                error_state=UNKNOWN)
                lock.release()
                # No ping either: the run holding the lock will send it.
                _finish(report, settings, run_id, output, effects)
                return report.state
            run.unfinished = run.unfinished or held.unfinished
        except OSError as exc:
            # The repair matters more than the lock: go on, and make the run UNKNOWN.
            run.lock_problem = (f"cannot create the lock file {held.path} "
                                f"({exc.strerror or type(exc).__name__}): check that its "
                                f"folder is writable, or set HEALTHCHECK_LOG_FILE and "
                                f"HEALTHCHECK_STATE_FILE")
    previous_handler = signal.signal(signal.SIGTERM, _raise_run_interrupted)
    try:
        try:
            report = run_check(settings, run, output.warn)
        except KeyboardInterrupt as exc:
            report = interrupted_report(settings, run, "SIGTERM" if isinstance(exc, RunInterrupted)
                                  else "SIGINT")
        except Exception:  # noqa: BLE001 - the last guard: a bug is one line, never silence
            report = bug_report(run.dry_run, settings.redact)
            effects.ping(settings, "/fail", report.lines()[0][1], time.monotonic() + 2,
                         run.ping_rid)
        _finish(report, settings, run_id, output, effects)
        return report.state
    finally:
        for held in locks:
            held.release()
        signal.signal(signal.SIGTERM, previous_handler)


def _ping_run_id(settings: Settings) -> str:
    """healthchecks.io's run id (a UUID), made only when there is a ping to send: the uuid
    module imports platform, about 4 ms of every run's start."""
    if not settings.ping_url:
        return ""
    import uuid
    return str(uuid.uuid4())


def _raise_run_interrupted(signum, frame):
    raise RunInterrupted()


def _fallback_settings(env_file: Optional[Path]) -> Settings:
    """Return what can still be read when the settings are bad: the log path and the ping URL."""
    log_file = SCRIPT_DIR / DEFAULT_LOG_FILE
    ping_url = None
    try:
        source = _EnvSource(env_file or DEFAULT_ENV_FILE, os.environ, explicit=False)
        log_file = source.path("HEALTHCHECK_LOG_FILE", log_file) or log_file
        ping_url = source.url("HEALTHCHECK_PING_URL")
    except HealthcheckError:
        pass
    return Settings(base_url="", secret="", secrets_to_hide=(), log_file=log_file,
                    ping_url=ping_url, urls_to_hide=(ping_url,) if ping_url else ())


def _finish(report: Report, settings: Settings, run_id: str, output: _Output,
            effects: Effects) -> None:
    """Write the log (when something is wrong) and print the report."""
    stdout_is_log = False
    if report.worth_logging or output.warnings:
        lines = report.lines()
        if not is_same_file(sys.stderr, settings.log_file):  # else they are in the log already
            lines += [(WARNING, w) for w in output.warnings]
        if report.traceback:
            lines += [(UNKNOWN, "traceback: " + clean_text(line)[:500]) for line in
                      report.traceback.rstrip().splitlines()[-MAX_TRACEBACK_LINES:]]
        redacted = [(state, output.redact(text)) for state, text in lines]
        try:
            stdout_is_log = effects.append_log(settings.log_file, run_id, redacted) and \
                is_same_file(sys.stdout, settings.log_file)
        except OSError as exc:
            message = (f"cannot write the log file {settings.log_file} "
                       f"({exc.strerror or type(exc).__name__}): check the folder's owner and "
                       f"permissions, or set HEALTHCHECK_LOG_FILE")
            report.problems.append((UNKNOWN, message))
            print(output.redact(f"{PROGRAM}: {message}"), file=sys.stderr, flush=True)
    output.report(report, stdout_is_log)
