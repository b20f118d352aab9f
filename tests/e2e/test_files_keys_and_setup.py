"""Round three (issue 14): files written by descriptor, unique series and keys, the script's own
incidents apart from the channels', the alert command's environment, and smaller fixes."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from conftest import COMMAND_NAME, FAST_SETTINGS, ROOT, SECRET, source_files, write_env
from gateway_simulator import json_fault

sys.path.insert(0, str(ROOT))
from healthcheck.text import Redactor, series_names

#: Runs the script as cron would, with an audit hook that plays the neighbour who can write to the
#: metrics folder: at the moment the script sets a mode (by name or on a descriptor), it swaps the
#: temporary file for a link to the victim. The hook makes the race deterministic: it fires at the
#: worst possible time, every time.
SWAPPER = r"""
import os, runpy, sys
script, folder, victim = sys.argv[1:4]
sys.path.insert(0, os.path.dirname(script))  # as `python script` would: the package beside it
swapped = []
def hook(event, args):
    if event == "os.chmod" and not swapped:
        for name in os.listdir(folder):
            if name.endswith(".tmp"):
                path = os.path.join(folder, name)
                os.unlink(path)
                os.symlink(victim, path)
                swapped.append(path)
sys.addaudithook(hook)
sys.argv = [script] + sys.argv[4:]
runpy.run_path(script, run_name="__main__")
"""


def run_with_swapper(home: Path, folder: Path, victim: Path, env: dict, cwd: Path):
    runner = cwd / "swapper.py"
    runner.write_text(SWAPPER)
    process_env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("WPP_", "HEALTHCHECK_", "INFRA_"))}
    write_env(home / ".env", env)
    return subprocess.run([sys.executable, str(runner), str(home / COMMAND_NAME),
                           str(folder), str(victim)], capture_output=True, text=True,
                          env=process_env, cwd=cwd, timeout=60, check=False)


# -- 1. modes set on the descriptor, never by name --------------------------------------------------

def test_swapped_metrics_temporary_file_never_changes_the_victims_mode(home, gateway, tmp_path):
    folder = tmp_path / "textfile"
    folder.mkdir()
    victim = home / ".env.victim"
    victim.write_text("DB_PASS=the-panel-password\n")
    victim.chmod(0o600)
    env = {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
           "HEALTHCHECK_METRICS_FILE": str(folder / "whatsapp.prom"), **FAST_SETTINGS}
    done = run_with_swapper(home, folder, victim, env, tmp_path)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600, done.stdout + done.stderr
    assert victim.read_text() == "DB_PASS=the-panel-password\n"
    metrics = folder / "whatsapp.prom"
    assert not metrics.is_symlink()  # the planted link was not renamed into place
    assert done.returncode == 3
    assert "cannot write the metrics file" in done.stdout
    assert "was replaced by something else while it was written" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_no_file_mode_is_set_by_name():
    import ast
    by_name = []
    for source in source_files():
        tree = ast.parse(source.read_text(encoding="utf-8"))
        by_name += [(source.name, node.lineno) for node in ast.walk(tree)
                    if isinstance(node, ast.Attribute) and node.attr in ("chmod", "lchmod")]
    assert by_name == []


def test_log_created_by_crons_redirection_is_made_private(run_check, gateway, home):
    # `>> logs/healthcheck-sessions.log 2>&1` makes the log 0644 (umask 022) before the run.
    log = home / "logs" / "healthcheck-sessions.log"
    log.parent.mkdir()
    log.write_text("")
    log.chmod(0o644)
    gateway.add_channel("imobsites", "disconnected")
    run = run_check()
    assert run.code == 1
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "imobsites" in log.read_text()


def test_metrics_file_stays_world_readable_and_state_private(run_check, gateway, home, tmp_path):
    metrics = tmp_path / "textfile" / "whatsapp.prom"
    gateway.add_channel("imobsites", "disconnected")
    old = os.umask(0o077)  # the strictest umask: the mode must not depend on it
    try:
        run = run_check(env={"HEALTHCHECK_METRICS_FILE": str(metrics)})
    finally:
        os.umask(old)
    assert run.code == 1
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644
    for name in ("healthcheck-sessions.log", "healthcheck-sessions.lock",
                 "healthcheck-state.json"):
        assert stat.S_IMODE((home / "logs" / name).stat().st_mode) == 0o600, name


# -- 10. no setting reaches the alert command -------------------------------------------------------

def test_alert_command_gets_no_token_url_from_the_process_environment(run_check, gateway,
                                                                       recorder, tmp_path):
    dump = tmp_path / "env.txt"
    webhook = f"{recorder.url}/hooks/xoxb-webhook-token-0123456789"
    ping = f"{recorder.url}/ping/5f1c0de0-aaaa-bbbb-cccc-0123456789ab"
    gateway.add_channel("imobsites", "qr_required", "qr")
    run = run_check(env={"HEALTHCHECK_ALERT_COMMAND": f"sh -c 'env > {dump}'"},
                    environ={"HEALTHCHECK_ALERT_WEBHOOK_URL": webhook, "HEALTHCHECK_PING_URL": ping,
                             "KEEP_ME": "an ordinary variable"})
    assert run.code == 2, run.stdout
    assert "/hooks/xoxb-webhook-token-0123456789" in recorder.paths(), run.stdout
    environment = dump.read_text()
    for token in ("xoxb-webhook-token-0123456789", "5f1c0de0-aaaa-bbbb-cccc-0123456789ab"):
        assert token not in environment
    names = {line.split("=", 1)[0] for line in environment.splitlines() if "=" in line}
    assert not [n for n in names if n.startswith(("WPP_", "HEALTHCHECK_", "INFRA_", "DB_"))]
    assert "KEEP_ME=an ordinary variable" in environment


# -- 9. the script's own incidents in a namespace no channel id reaches ------------------------------

def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


def test_channel_named_like_the_activity_incident_does_not_silence_it(run_check, gateway,
                                                                      sqlite_db, recorder, home):
    gateway.add_channel("*activity*", "connected")
    gateway.add_channel("*gateway*", "connected")
    settings = {**sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELEC 1"),
                "HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hooks/T000/B000/tok3nXYZ"}
    run_check(env=settings)
    assert recorder.requests == []
    run = run_check(env=settings)
    assert run.code == 3
    [alert] = recorder.json_bodies()
    assert [item["subject"] for item in alert["items"]] == ["activity"]
    state = state_of(home)
    assert state["watchdog_incidents"]["activity"]["runs_down"] == 2
    assert "*activity*" not in state["incidents"]


def test_channel_named_like_the_gateway_incident_keeps_its_own(run_check, gateway, home):
    gateway.add_channel("*gateway*", "qr_required", "stay_down")
    run_check()
    gateway.set_fault("list", json_fault(500, {"error": "down"}, times=1))
    assert run_check().code == 2  # the gateway fails: its own incident, not the channel's
    state = state_of(home)
    assert state["incidents"]["*gateway*"]["reason"] == "down"
    assert state["incidents"]["*gateway*"]["runs_down"] == 1
    assert state["watchdog_incidents"]["gateway"]["runs_down"] == 1
    run = run_check("--verbose")  # the gateway answers again: only its incident closes
    assert "the gateway answers again" in run.stdout
    state = state_of(home)
    assert state["incidents"]["*gateway*"]["reason"] == "down"
    assert "gateway" not in state["watchdog_incidents"]


def test_state_of_1_1_0_keeps_the_gateway_incident(run_check, gateway, home):
    # 1.1.0 kept the script's own incidents among the channels, under "*gateway*".
    (home / "logs").mkdir()
    legacy = {"version": 1, "pending_alerts": [], "incidents": {
        "*gateway*": {"since": "2026-01-01T00:00:00+00:00", "runs_down": 3, "kicks": 0,
                      "alerted_at": "2026-01-01T00:30:00+00:00", "reason": "unreachable"}}}
    state_file = home / "logs" / "healthcheck-state.json"
    state_file.write_text(json.dumps(legacy))
    state_file.chmod(0o600)
    run = run_check("--verbose")
    assert "the gateway answers again" in run.stdout
    assert state_of(home)["incidents"] == {}


# -- 8. ids that differ only by invisible characters stay apart --------------------------------------

def read_series(path: Path) -> list[tuple[str, dict, float]]:
    from prometheus_client.parser import text_string_to_metric_families
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(path.read_text(encoding="utf-8"))
            for sample in family.samples]


def test_ids_differing_only_by_invisible_characters_are_distinct_series(run_check, gateway,
                                                                        home, tmp_path):
    down, up = "imobsites\u200b", "imobsites\u200c"
    gateway.add_channel(down, "qr_required", "qr")
    gateway.add_channel(up, "connected")
    metrics = tmp_path / "textfile" / "whatsapp.prom"
    run = run_check("--verbose", env={"HEALTHCHECK_METRICS_FILE": str(metrics)})
    assert run.code == 2
    series = read_series(metrics)
    for name in ("whatsapp_session_up", "whatsapp_session_status", "whatsapp_session_silent"):
        keys = [tuple(sorted(labels.items())) for n, labels, _ in series if n == name]
        assert len(keys) == len(set(keys)) == 4, name  # two odd ids and the fixture's two
    up_by_channel = {labels["channel"]: value for n, labels, value in series
                     if n == "whatsapp_session_up"}
    odd = sorted(c for c in up_by_channel if c.startswith("imobsites?"))
    assert len(odd) == 2 and all(re.fullmatch(r"imobsites\?~[0-9a-f]{8}", c) for c in odd)
    assert sorted(up_by_channel[c] for c in odd) == [0, 1]  # the down one shows as down
    assert run.stdout.count("differ from another only by invisible characters") == 1
    state = state_of(home)
    assert down in state["incidents"] and up not in state["incidents"]


def test_a_listed_id_cannot_take_a_digested_name():
    import hashlib
    raw = "abc\u200b"
    digest = hashlib.sha256(raw.encode()).hexdigest()
    ids = [raw, "abc\u200c", "abc?", f"abc?~{digest[:8]}", f"abc?~{digest[:16]}",
           f"abc?~{digest}"]
    names = series_names(ids)
    assert len(set(names.values())) == len(ids)
    for clean in ids[2:]:
        assert names[clean] == clean  # an id cleaning leaves alone keeps its name


# -- 17. smaller ones ---------------------------------------------------------------------------------

def test_env_file_dev_null_takes_every_setting_from_the_environment(run_check, gateway):
    run = run_check("--env-file", os.devnull, "--verbose", write_dotenv=False,
                    environ={"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                             **FAST_SETTINGS})
    assert run.code == 0, run.stdout + run.stderr
    assert "not found" not in run.stdout + run.stderr


def test_env_file_dev_null_without_settings_says_what_is_true(run_check):
    run = run_check("--env-file", os.devnull, write_dotenv=False)
    assert run.code == 3
    assert "not found" not in run.stdout + run.stderr and "does not exist" not in run.stdout
    assert ("WPP_GATEWAY_BASE_URL is missing: the settings file /dev/null is the null device"
            in run.first_line)
    assert len(run.stdout.splitlines()) == 1


def test_env_file_that_is_a_fifo_is_named_as_one(run_check, tmp_path):
    fifo = tmp_path / "settings.fifo"
    os.mkfifo(fifo)
    run = run_check("--env-file", str(fifo), write_dotenv=False, timeout=20)
    assert run.code == 3
    assert f"settings file {fifo} (given with --env-file) is a FIFO, not a regular file" \
        in run.first_line


def test_a_password_that_is_a_word_hides_only_itself(run_check, gateway):
    gateway.secret = "test"
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(500, {"success": False, "error":
                      "testing mode: key test refused; retry u:test@h or u%3Atest%40h, "
                      "contest attested"}))
    run = run_check(env={"WPP_GATEWAY_SECRET": "test"})
    assert run.code == 2
    line = next(text for text in run.stdout.splitlines() if "testing mode" in text)
    assert ("testing mode: key *** refused; retry u:***@h or u%3A***%40h, contest attested"
            in line)
    everything = run.everything()
    for leaked in (" test ", ":test@", "%3Atest%40"):
        assert leaked not in everything


def test_word_rule_in_process():
    redact = Redactor(["Test", "Sup3rS3cretValue99"])
    assert redact("TESTING the test; Test. mytest test1") == "TESTING the ***; ***. mytest test1"
    assert redact("xSup3rS3cretValue99y") == "x***y"  # a token is no word: hidden glued in
    assert redact("a S3cretValue b") == "a *** b"  # and in part
    assert Redactor(["password"])("passwords; using password: YES") == \
        "passwords; using ***: YES"
    horse = Redactor(["correcthorsebatterystaple"])  # a passphrase is no word
    assert horse("echoed 'correcthorsebatterystapl'") == "echoed '***'"  # in part, too
    assert horse("correcthorsebatterystaples, ahorsebatteryish") == "***s, a***ish"
    welcome = Redactor(["Welcomehome"])  # letters only, short: a word, in part too
    assert welcome("welcomehomes; welcomehom") == "welcomehomes; ***"


def test_system_python_without_the_packages_suggests_a_venv_first(home, tmp_path):
    """Cron's /usr/bin/python3 without the packages: pip install there is refused (PEP 668)."""
    # The base interpreter (not a venv) without site-packages: a system Python lacking them.
    python = os.path.realpath(sys.executable)
    done = subprocess.run([python, "-S", str(home / COMMAND_NAME)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 3
    line = done.stdout.strip()
    assert "the package requests is not installed" in line and len(line.splitlines()) == 1
    venv = f"cd {home} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
    assert venv in line and f"{home}/.venv/bin/python" in line
    assert "-m pip install" not in line  # no system-wide install is suggested


def test_docs_never_suggest_a_system_wide_pip_install():
    for name in ("README.md", ".env.example", *(f"docs/{d.name}" for d in (ROOT / "docs").glob("*.md"))):
        text = (ROOT / name).read_text(encoding="utf-8")
        # A command to run: at a line's or a code span's start, with something to install.
        suggested = re.findall(r"(?m)(?:^|`|#\s)\s*(?:sudo\s+)?(?:python3? -m pip|pip3?) install "
                               r"(?!--user)\S+", text)
        assert suggested == [], name


def try_sh_copy(tmp_path: Path) -> Path:
    """A copy of the repository's try.sh folder, its venv a stand-in that installs nothing."""
    import shutil
    folder = tmp_path / "clone"
    (folder / "tests" / "support").mkdir(parents=True)
    (folder / "tools").mkdir()
    for name in ("try.sh", "healthcheck_sessions.py", "requirements.txt"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "healthcheck", folder / "healthcheck",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("demo.py", "build_pyz.py"):
        shutil.copy(ROOT / "tools" / name, folder / "tools" / name)
    shutil.copy(ROOT / "tests" / "support" / "gateway_simulator.py",
                folder / "tests" / "support" / "gateway_simulator.py")
    python = folder / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return folder


def run_try_sh(folder: Path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WPP_", "HEALTHCHECK_", "INFRA_"))}
    return subprocess.run(["sh", str(folder / "try.sh")], capture_output=True, text=True,
                          env=env, cwd=folder, timeout=120, check=False)


def test_try_sh_gives_no_cron_line_for_a_folder_without_env(tmp_path):
    folder = try_sh_copy(tmp_path)
    done = run_try_sh(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    here = str(folder.resolve())
    cron = [line for line in done.stdout.splitlines() if line.startswith("*/15 ")]
    assert cron == ["*/15 * * * * PANEL/.venv/bin/python PANEL/healthcheck_sessions.pyz"]
    assert (folder / "dist" / "healthcheck_sessions.pyz").is_file()  # the file to copy
    assert "has no .env" in done.stdout and here not in "\n".join(cron)
    assert "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" in done.stdout


def test_try_sh_gives_the_cron_line_for_a_folder_with_its_env(tmp_path, gateway):
    folder = try_sh_copy(tmp_path)
    write_env(folder / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                                **FAST_SETTINGS})
    done = run_try_sh(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    here = folder.resolve()
    assert f"*/15 * * * * {here}/.venv/bin/python {here}/healthcheck_sessions.py" in done.stdout


def test_setup_warning_on_the_first_run_and_every_verbose_and_dry_run(run_check, gateway, home):
    warning = "TLS certificate checking is OFF (HEALTHCHECK_VERIFY_TLS=false)"
    env = {"HEALTHCHECK_VERIFY_TLS": "false"}
    first = run_check(env=env)
    assert first.code == 0 and warning in first.stderr and warning in first.log
    assert warning not in run_check(env=env).stderr  # no cron mail every 15 minutes
    for args in (("--verbose",), ("--dry-run",), ("--verbose",), ("--dry-run",),
                 ("--dry-run", "--json")):
        log_before = first.log_file.read_text()
        run = run_check(*args, env=env)
        assert run.code == 0 and warning in run.stderr, args
        if "--dry-run" in args:
            assert first.log_file.read_text() == log_before  # a dry run writes no log
    gateway.set_fault("list", json_fault(500, {"error": "down"}))
    for args in (("--verbose",), ("--dry-run",)):
        run = run_check(*args, env=env)
        assert run.code == 2 and warning in run.stderr, args


def test_clear_text_warning_names_the_setting_of_this_gateway(run_check, tmp_path):
    url = "http://192.0.2.10:9"  # not loopback; nothing is sent: the run is a dry run
    run = run_check("--dry-run", "-t", "3", env={
        "HEALTHCHECK_GATEWAY": "waha", "HEALTHCHECK_GATEWAY_URL": url,
        "HEALTHCHECK_GATEWAY_KEY": "waha-key-0123456789", "WPP_GATEWAY_BASE_URL": None,
        "WPP_GATEWAY_SECRET": None, "HEALTHCHECK_CONNECT_TIMEOUT": "0.5"})
    assert "HEALTHCHECK_GATEWAY_URL is http://: the gateway secret crosses" in run.stderr
    assert "WPP_GATEWAY_BASE_URL" not in run.stderr


def readme_section(title: str, document: str = "README.md") -> str:
    text = (ROOT / document).read_text(encoding="utf-8")
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_readme_says_debian_cron_titles_a_repair_failed():
    for section in (readme_section("What cron's e-mail means"),
                    readme_section("Exit status", "docs/alerts-and-log.md")):
        assert "(failed)" in section and "Debian" in section and \
            "Exit 1 is a WARNING by design" in section


def test_metrics_folder_is_debians_node_exporter_default():
    for name in ("docs/monitoring.md", ".env.example"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "HEALTHCHECK_METRICS_FILE=/var/lib/prometheus/node-exporter/whatsapp.prom" in text
        assert "textfile_collector" not in text, name
