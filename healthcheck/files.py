"""The log, lock, state and metrics files: never through a link, always the owner's."""

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Optional

from .activity import cap_history
from .constants import (
    LEGACY_WATCHDOG_KEYS,
    MAX_ASIDE_FILES,
    MAX_STATE_BYTES,
    PROGRAM,
    STATE_NAMES,
    STATE_SLACK_BYTES,
    STATE_VERSION,
    UNKNOWN,
    WARNING,
    WATCHDOG_INCIDENTS,
)
from .errors import HealthcheckError
from .text import Redactor, _plural
from .times import _parse_time


class RunLock:
    """An exclusive, non-blocking lock on a file beside the log, held for the whole run.

    While a run holds it, the file says which run and since when; a clean end empties it. So
    a lock file that is not empty when the next run takes it was left by a run that was killed
    (SIGKILL from a supervisor's timeout, the OOM killer, a reboot): `unfinished` says so.
    """

    def __init__(self, path: Path):
        self.path = path
        self._handle = None
        #: "run=<id> started=<time>" of a previous run that never finished, else "".
        self.unfinished = ""

    def acquire(self, run_id: str) -> bool:
        """Return False when another run holds the lock; raise OSError when it cannot be made."""
        import fcntl
        handle = open_own_file(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        self._handle = handle
        self.unfinished = os.pread(handle, 200, 0).decode("utf-8", "replace").strip()
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"run={run_id} started={log_timestamp()} pid={os.getpid()}\n"
                  .encode(), 0)
        return True

    def release(self) -> None:
        if self._handle is not None:
            try:
                os.ftruncate(self._handle, 0)  # a clean end: the next run finds it empty
            except OSError:
                pass
            os.close(self._handle)  # closing drops the flock
            self._handle = None


def log_timestamp(now: Optional[datetime] = None) -> str:
    """Local time with its UTC offset, e.g. 2026-02-09T14:30:00-03:00."""
    return (now or datetime.now()).astimezone().isoformat(timespec="seconds")


class UnsafeFileError(OSError):
    """A path where the script keeps a file holds something else: it is left alone."""


def _file_kind(mode: int) -> str:
    import stat
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_own_file(path: Path) -> bool:
    """Return True when `path` exists as a regular file of ours, False when it does not exist.

    Raise UnsafeFileError when something else is there: a symlink (it could point at .env or
    ~/.profile), a FIFO (it would block the run), a device, a folder, or another user's file
    (it could plant alerts). Such a path is never followed, opened for writing, renamed or
    deleted.
    """
    import stat
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(0, f"{_file_kind(info.st_mode)} is there, not a regular file; it "
                                 f"was left alone: remove it, or use another path")
    if info.st_uid != os.geteuid():
        raise UnsafeFileError(0, f"it belongs to {_user_name(info.st_uid)}, not to "
                                 f"{_user_name(os.geteuid())} who runs this; it was left "
                                 f"alone: remove it, or run the script as its owner")
    return True


def _user_name(uid: int) -> str:
    try:
        import pwd
        return f"user {pwd.getpwuid(uid).pw_name}"
    except (KeyError, ImportError):
        return f"uid {uid}"


def open_own_file(path: Path, flags: int) -> int:
    """Open a file of the script's own (created 0600), never through a link or into a FIFO."""
    import stat
    path.parent.mkdir(parents=True, exist_ok=True)
    check_own_file(path)
    try:
        handle = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (40, 6, 21):  # ELOOP, ENXIO, EISDIR: swapped in since the check
            raise UnsafeFileError(exc.errno, "something other than a regular file is there; "
                                             "it was left alone") from None
        raise
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(handle)
        raise UnsafeFileError(0, "something other than a regular file of ours is there; it was "
                                 "left alone")
    if flags & (os.O_WRONLY | os.O_RDWR) and stat.S_IMODE(info.st_mode) != 0o600:
        # Set on the descriptor, never by name: a name can be swapped for a link to .env between
        # two calls. Cron's `>> log 2>&1` creates the log 0644 before the script even starts.
        os.fchmod(handle, 0o600)
    return handle


def replace_own_file(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace a file atomically: a new file under a random name beside it, fsync, rename.

    A crash leaves the old file or the new, never half; the temporary name cannot be planted.
    """
    import tempfile
    path.parent.mkdir(parents=True, exist_ok=True)
    check_own_file(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            # The mode is set on the descriptor, never by name: whoever can write to the folder
            # could swap the name for a link to .env, and a chmod by name would follow it.
            os.fchmod(stream.fileno(), mode)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
            if not _is_open_file(temporary, stream.fileno()):
                raise UnsafeFileError(0, f"the temporary file {temporary} was replaced by "
                                         f"something else while it was written; nothing was "
                                         f"changed: check who else can write to "
                                         f"{path.parent}")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _is_open_file(path: str, handle: int) -> bool:
    """True when `path` (not followed) is still the file open as `handle`."""
    try:
        named, opened = os.lstat(path), os.fstat(handle)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def append_log(path: Path, run_id: str, lines: list[tuple[int, str]]) -> None:
    """Append one line per event, each with a timestamp, a level and the run id."""
    stamp = log_timestamp()
    text = "".join(f"{stamp} {STATE_NAMES[state]:<8} [{PROGRAM} run={run_id}] {message}\n"
                   for state, message in lines)
    handle = open_own_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        # One write in append mode: lines of concurrent writers never interleave mid-line.
        os.write(handle, text.encode("utf-8", "replace"))
    finally:
        os.close(handle)


def is_same_file(stream, path: Path) -> bool:
    """True when `stream` is the file at `path` (cron's `>> log 2>&1`)."""
    try:
        mine, theirs = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _empty_state() -> dict:
    return {"version": STATE_VERSION, "incidents": {}, "pending_alerts": []}


def load_state(path: Path, read_only: bool) -> tuple[dict, list[tuple[int, str]]]:
    """Return the state of earlier runs, and notes; a corrupt file is moved aside, never fatal.

    A file over the size limit, or cut short, still gives back its incidents and waiting
    alerts when they can be read: they come before the activity history in the file, and only
    the history is lost (see `_salvage_state`).
    """
    try:
        if not check_own_file(path):
            return _empty_state(), []
        handle = open_own_file(path, os.O_RDONLY)
        with os.fdopen(handle, "rb") as stream:
            text = stream.read(MAX_STATE_BYTES + 1).decode("utf-8", "replace")
    except FileNotFoundError:
        return _empty_state(), []
    except UnsafeFileError as exc:
        # Not ours to read, move or replace: incidents cannot be kept; the checks go on.
        return _empty_state(), [(UNKNOWN, f"state file {path}: {exc.strerror}; incidents "
                                          f"and alerts are not tracked until it is fixed")]
    except OSError as exc:
        why, salvaged = exc.strerror or type(exc).__name__, None
    else:
        data = None
        if len(text) <= MAX_STATE_BYTES:
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):
                pass
        if (isinstance(data, dict) and isinstance(data.get("incidents"), dict)
                and isinstance(data.get("pending_alerts"), list)):
            return _join_watchdog_incidents(data), []
        why = (f"over the {MAX_STATE_BYTES // (1024 * 1024)} MB limit"
               if len(text) > MAX_STATE_BYTES else "not a state file (corrupt or truncated)")
        salvaged = _salvage_state(text)
    kept = ("its incidents and waiting alerts were kept, the activity history was dropped "
            "(silence detection learns it afresh)" if salvaged else "incidents start afresh")
    if read_only:  # a dry run: the file stays where it is
        but = ", but for its incidents" if salvaged else ""
        return salvaged or _empty_state(), [(WARNING, f"state file {path} is unreadable "
                                                      f"({why}); ignored by this dry run{but}")]
    aside = path.with_name(f"{path.name}.corrupt-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
                           f"-{os.getpid()}")
    try:
        os.replace(path, aside)
        moved = f"moved aside to {aside.name}"
        _remove_old_asides(path)
    except OSError as exc:
        moved = f"could not be moved aside ({exc.strerror})"
    # State never stands between a channel and its reconnect: go on with what could be read.
    return salvaged or _empty_state(), [(WARNING, f"state file {path} was unreadable ({why}), "
                                                  f"{moved}; {kept}")]


def _salvage_state(text: str) -> Optional[dict]:
    """Return the incidents and waiting alerts of a state file cut short, None when lost.

    `save_state` writes the top-level keys one per line, at one space of indent, with the
    history last: each part before it can be decoded on its own from where its key starts.
    """
    decoder = json.JSONDecoder()
    parts = {}
    for key in ("incidents", "watchdog_incidents", "pending_alerts", "warned"):
        start = text.find(f'\n "{key}": ')
        if start < 0:
            continue
        try:
            parts[key], _ = decoder.raw_decode(text, start + len(key) + 6)
        except (ValueError, RecursionError):
            continue
    if not isinstance(parts.get("incidents"), dict):
        return None
    state = _empty_state()
    state["incidents"] = parts["incidents"]
    if isinstance(parts.get("watchdog_incidents"), dict):
        state["watchdog_incidents"] = parts["watchdog_incidents"]
    for key in ("pending_alerts", "warned"):
        if isinstance(parts.get(key), list):
            state[key] = parts[key]
    return _join_watchdog_incidents(state)


def _remove_old_asides(path: Path) -> None:
    """Remove all but the newest MAX_ASIDE_FILES state files set aside (of ours, regular)."""
    import glob
    import stat
    asides = []
    for candidate in path.parent.glob(f"{glob.escape(path.name)}.corrupt-*"):
        try:
            info = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
            asides.append((info.st_mtime, candidate.name, candidate))
    for _, _, old in sorted(asides, reverse=True)[MAX_ASIDE_FILES:]:
        try:
            os.unlink(old)
        except OSError:
            pass  # a file we cannot remove is left for a person; the run goes on


def save_state(path: Path, state: dict, redact: Redactor) -> Optional[str]:
    """Replace the state file atomically, its text redacted like every other output.

    The file never outgrows what `load_state` reads: when it would, the activity history of the
    channels least recently listed, then least recently heard from, is left out, and the line
    returned says how much (None when nothing was).
    """
    state = _redact_values(_split_watchdog_incidents(state), redact)
    text = _state_text(state)
    dropped, activity = 0, state.get("activity")
    if len(text) > MAX_STATE_BYTES and isinstance(activity, dict):
        state["activity"], dropped = cap_history(activity, len(text) - MAX_STATE_BYTES
                                                 + STATE_SLACK_BYTES)
        text = _state_text(state)
        if len(text) > MAX_STATE_BYTES:  # the estimate fell short: keep the incidents whole
            dropped = len(activity.get("channels") or ())
            state["activity"] = {**activity, "channels": {}}
            text = _state_text(state)
    replace_own_file(path, text)
    if not dropped:
        return None
    return (f"state file {path} would be over its {MAX_STATE_BYTES // (1024 * 1024)} MB limit: "
            f"the activity history of {_plural(dropped, 'channel')} was dropped, the least "
            f"recently listed or heard from first (silence detection learns them afresh)")


def _state_text(state: dict) -> str:
    # The history goes last: a file cut short still holds the incidents (see _salvage_state).
    ordered = {k: v for k, v in state.items() if k != "activity"}
    if "activity" in state:
        ordered["activity"] = state["activity"]
    return json.dumps(ordered, indent=1, ensure_ascii=True) + "\n"


def _split_watchdog_incidents(state: dict) -> dict:
    """Return the state as written: the channels' incidents apart from the script's own."""
    incidents = state.get("incidents") or {}
    return dict(state, incidents={k: v for k, v in incidents.items() if isinstance(k, str)},
                watchdog_incidents={name: incidents[key] for name, key
                                    in WATCHDOG_INCIDENTS.items() if key in incidents})


def _join_watchdog_incidents(data: dict) -> dict:
    """Return a state as read, the script's own incidents back under their keys."""
    incidents = dict(data["incidents"])
    own = data.pop("watchdog_incidents", None)
    if isinstance(own, dict):
        found = {WATCHDOG_INCIDENTS[name]: value for name, value in own.items()
                 if name in WATCHDOG_INCIDENTS}
    else:  # written by 1.1.0 or earlier, when they were kept among the channels
        found = {key: incidents.pop(name) for name, key in LEGACY_WATCHDOG_KEYS.items()
                 if name in incidents}
    incidents.update(found)
    data["incidents"] = incidents
    return data


def read_last_run(path: Path) -> dict:
    """Return the last finished run recorded in the state file, or raise HealthcheckError.

    Read-only and lock-free, so a check never waits for the cron run nor makes it wait: the
    cron run replaces the file by a rename, so what is read is always a whole file.
    """
    import stat
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HealthcheckError(f"the cron run has not run yet: there is no state file {path}; "
                               f"check the crontab line, and that --status reads the same "
                               f".env as the cron run", UNKNOWN) from None
    except OSError as exc:
        raise HealthcheckError(f"cannot read the state file {path} "
                               f"({exc.strerror or type(exc).__name__}): run --status as the "
                               f"user the cron run runs as (sudo -u), with the same .env",
                               UNKNOWN) from None
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise HealthcheckError(f"the state file {path} is not a regular file; the cron "
                                   f"run reports it in its own output", UNKNOWN)
        raw = stream.read(MAX_STATE_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        data = None
    last = data.get("last_run") if isinstance(data, dict) else None
    if (not isinstance(last, dict) or not isinstance(last.get("status_line"), str)
            or last.get("exit_status") not in STATE_NAMES
            or _parse_time(last.get("ended_at")) is None):
        raise HealthcheckError(f"the state file {path} holds no finished run yet (a run of an "
                               f"earlier version wrote it, or it is unreadable): wait for the "
                               f"next cron run, and read the log if this lasts", UNKNOWN)
    return last


def _redact_values(value, redact: Redactor):
    """Return a JSON-ready value with every string value redacted; keys (channel ids) kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_values(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redact_values(v, redact) for k, v in value.items()}
    return value


def write_metrics(path: Path, text: str) -> None:
    """Replace the metrics file atomically, world-readable: node_exporter reads it as itself."""
    replace_own_file(path, text, mode=0o644)
