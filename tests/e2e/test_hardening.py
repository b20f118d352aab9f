"""Hardening, round two: no traceback, no foothold, no flood (each case was reproduced first)."""

import base64
import gzip
import json
import os
import pwd
import subprocess
import sys
from urllib.parse import quote

import pytest
from conftest import COMMAND_NAME, ROOT, SECRET, write_env
from gateway_simulator import Fault, json_fault

sys.path.insert(0, str(ROOT))
from healthcheck.cli import main
from healthcheck.settings import Settings, SmtpSettings, setup_warnings


def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


def no_traceback(run):
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr


# -- 1. never a traceback -------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["id", "status"])
def test_lone_surrogate_in_an_id_or_status_is_replaced_and_handled(run_check, gateway, where):
    entry = {"id": "half\ud83d", "status": "disconnected"} if where == "id" else \
        {"id": "imobsites", "status": "disconnected\ud83d"}
    gateway.raw_list = {"success": True, "channels": [entry]}
    run = run_check("--json")
    no_traceback(run)
    report = json.loads(run.stdout)
    assert report["exit_code"] in (1, 2) and len(report["channels"]) == 1
    assert report["channels"][0]["outcome"] in ("reconnect_requested", "already_connected",
                                                 "failed")
    assert gateway.count("qr") == 1
    run.stdout.encode("ascii")  # ASCII-safe JSON


def test_lone_surrogate_in_a_gateway_error_text_is_a_failed_kick(run_check, gateway):
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(500, {"success": False, "error": "broke \ud83d here"}))
    run = run_check()
    no_traceback(run)
    assert run.code == 2 and "gateway error: broke ? here" in run.stdout


def test_content_length_that_is_not_a_number_is_one_line(run_check, gateway):
    gateway.set_fault("list", Fault("response", body='{"channels": []}',
                                    headers={"Content-Length": "\u00b2", "Connection": "close"}))
    run = run_check()
    no_traceback(run)
    assert run.code in (2, 3) and run.first_line.startswith("WHATSAPP SESSIONS")
    assert run.log


@pytest.mark.parametrize("location", ["http://evil:99999/", "http://[::1", "http://gw\x85x/"])
def test_redirect_to_an_unparseable_address_is_one_line(run_check, gateway, location):
    gateway.set_fault("list", Fault("response", status=302, body="",
                                    headers={"Location": location}))
    run = run_check()
    no_traceback(run)
    assert run.code == 2 and "redirect to" in run.first_line
    assert "\x85" not in run.stdout + run.log


def test_double_gzip_body_is_refused_unread(run_check, gateway):
    bomb = gzip.compress(gzip.compress(b" " * 5_000_000))
    gateway.set_fault("list", Fault("response", body=bomb,
                                    headers={"Content-Encoding": "gzip, gzip"}))
    run = run_check()
    no_traceback(run)
    assert run.code == 2 and "sent a compressed answer (gzip, gzip)" in run.first_line


def _failing_main(monkeypatch, home, gateway, env, runs):
    """Run main() in this process with a bug planted in the list parser; return exit codes."""
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                              "HEALTHCHECK_LOG_FILE": str(home / "logs" / "h.log"),
                              "HEALTHCHECK_VERIFY_SECONDS": "0", **env})
    for name in [k for k in os.environ if k.startswith(("WPP_", "HEALTHCHECK_"))]:
        monkeypatch.delenv(name)

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug nobody found yet")

    monkeypatch.setattr("healthcheck.gateways.wrapper.parse_listing", bug)
    return [main(["--env-file", str(home / ".env")]) for _ in range(runs)]


def test_unexpected_exception_is_unknown_logged_and_still_alerts(monkeypatch, capsys, home,
                                                                 gateway, recorder):
    codes = _failing_main(monkeypatch, home, gateway, {
        "HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook", "HEALTHCHECK_ALERT_AFTER": "3",
        "HEALTHCHECK_PING_URL": recorder.url + "/ping"}, runs=3)
    assert codes == [3, 3, 3]
    out = capsys.readouterr().out
    assert "internal error (ZeroDivisionError: a bug nobody found yet)" in out
    assert "Traceback" not in out
    log = (home / "logs" / "h.log").read_text()
    assert "traceback: Traceback (most recent call last)" in log and "ZeroDivisionError" in log
    alerts = [r for r in recorder.requests if r["path"] == "/hook"]
    assert len(alerts) == 1 and "the gateway is failing" in json.loads(alerts[0]["body"])["text"]
    assert [p for p in recorder.paths() if p != "/hook"] == ["/ping/start", "/ping/fail"] * 3


# -- 2. the files -------------------------------------------------------------------------------

def test_symlink_at_the_log_is_never_followed(run_check, gateway, home, tmp_path):
    victim = tmp_path / "profile"
    victim.write_text("original\n")
    (home / "logs").mkdir()
    (home / "logs" / "healthcheck-sessions.log").symlink_to(victim)
    gateway.add_channel("x;id>pwned;#", "disconnected")
    run = run_check()
    assert victim.read_text() == "original\n"
    # The kick's WARNING outranks the log's UNKNOWN (CRITICAL > WARNING > UNKNOWN > OK).
    assert run.code == 1 and "cannot write the log file" in run.stderr
    assert "symbolic link" in run.stderr
    assert gateway.channels["x;id>pwned;#"]["status"] == "connected"  # still kicked


def test_symlink_at_the_old_temporary_name_is_left_alone(run_check, home, tmp_path):
    victim = tmp_path / "panel.env"
    victim.write_text("DB_PASS=keep\n")
    (home / "logs").mkdir()
    (home / "logs" / "healthcheck-state.json.tmp").symlink_to(victim)
    run_check()
    assert victim.read_text() == "DB_PASS=keep\n"
    assert state_of(home)["incidents"] == {}


def test_fifo_at_the_state_path_cannot_hold_the_run(run_check, gateway, home):
    (home / "logs").mkdir()
    fifo = home / "logs" / "healthcheck-state.json"
    os.mkfifo(fifo)
    gateway.add_channel("imobsites", "disconnected")
    run = run_check(env={"HEALTHCHECK_DEADLINE": "10"}, timeout=40)
    assert run.code == 1 and "a FIFO is there" in run.stdout  # the kick's WARNING outranks it
    assert gateway.channels["imobsites"]["status"] == "connected"
    assert fifo.exists() and not fifo.is_file()  # neither replaced nor moved


def test_state_file_naming_a_folder_is_not_renamed(run_check, home, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    run = run_check(env={"HEALTHCHECK_STATE_FILE": str(folder)})
    assert run.code == 3 and "a folder is there" in run.stdout
    assert folder.is_dir() and not list(tmp_path.glob("a-folder.corrupt-*"))


def test_files_the_script_creates_are_private(run_check, gateway, home):
    gateway.add_channel("imobsites", "disconnected")
    run_check()
    for name in ("healthcheck-sessions.log", "healthcheck-sessions.lock",
                 "healthcheck-state.json", "healthcheck-state.json.lock"):
        assert (home / "logs" / name).stat().st_mode & 0o777 == 0o600, name


def test_lock_left_by_another_user_says_whose_it_is(run_check, gateway, home):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file of another user")
    (home / "logs").mkdir()
    lock = home / "logs" / "healthcheck-sessions.lock"
    lock.write_text("")
    nobody = pwd.getpwnam("nobody")
    os.chown(lock, nobody.pw_uid, nobody.pw_gid)
    gateway.add_channel("imobsites", "disconnected")
    run = run_check()
    assert run.code == 1 and "it belongs to user nobody" in run.stdout  # the kick's WARNING
    assert gateway.channels["imobsites"]["status"] == "connected"


def test_planted_state_of_another_user_is_not_trusted(run_check, home, recorder):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file of another user")
    (home / "logs").mkdir()
    planted = home / "logs" / "healthcheck-state.json"
    planted.write_text(json.dumps({"incidents": {}, "pending_alerts": [
        {"message": {"text": "send money"}, "destinations": ["webhook"]}]}))
    os.chown(planted, pwd.getpwnam("nobody").pw_uid, -1)
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook"})
    assert run.code == 3 and "it belongs to user nobody" in run.stdout
    assert recorder.requests == []
    assert "send money" in planted.read_text()  # left as it was


def test_two_configurations_sharing_a_state_file_never_interleave(run_check, gateway, home,
                                                                  tmp_path):
    shared = tmp_path / "shared-state.json"
    gateway.set_fault("list", Fault("hang"))
    write_env(home / ".env", {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                              "HEALTHCHECK_STATE_FILE": str(shared),
                              "HEALTHCHECK_LOG_FILE": str(tmp_path / "a" / "a.log"),
                              "HEALTHCHECK_DEADLINE": "30", "HEALTHCHECK_LIST_TIMEOUT": "25"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WPP_", "HEALTHCHECK_"))}
    first = subprocess.Popen([sys.executable, str(home / COMMAND_NAME)],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        import time
        for _ in range(600):
            if gateway.count("list"):
                break
            time.sleep(0.05)
        other = tmp_path / "other.env"
        write_env(other, {"WPP_GATEWAY_BASE_URL": gateway.url, "WPP_GATEWAY_SECRET": SECRET,
                          "HEALTHCHECK_STATE_FILE": str(shared),
                          "HEALTHCHECK_LOG_FILE": str(tmp_path / "b" / "b.log")})
        run = run_check("--env-file", str(other))
        assert run.code == 3 and "the lock of the state file" in run.first_line
        assert gateway.count("list") == 1
    finally:
        first.kill()
        first.communicate()


# -- 3. bounded -----------------------------------------------------------------------------------

def test_flood_of_huge_ids_is_never_kicked_nor_stored(run_check, gateway, home):
    gateway.raw_list = {"channels": [{"id": f"{n:04}" + "x" * 1996, "status": "qr_required"}
                                     for n in range(4000)]}
    run = run_check()
    assert run.code == 3
    assert gateway.count("qr") == 0
    assert len(run.log.splitlines()) <= 600
    assert (home / "logs" / "healthcheck-state.json").stat().st_size < 10_000


def test_flood_of_qr_channels_keeps_state_log_and_alerts_bounded(run_check, gateway, home,
                                                                 recorder):
    recorder.status = 500  # every delivery fails and is kept
    settings = {"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook",
                "HEALTHCHECK_WORKERS": "16", "HEALTHCHECK_DEADLINE": "60"}
    for run_number in range(2):
        gateway.channels.clear()
        for n in range(1500):  # new ids every run, each issuing a QR
            gateway.add_channel(f"r{run_number}-" + "c" * 190 + f"{n:04}", "qr_required", "qr")
        run = run_check(env=settings, timeout=120)
        assert len(run.log.splitlines()) <= 600 * (run_number + 1)
    assert (home / "logs" / "healthcheck-state.json").stat().st_size < 1024 * 1024
    assert all(len(r["body"]) <= 64 * 1024 for r in recorder.requests)
    state = state_of(home)
    assert len(json.dumps(state["pending_alerts"])) <= 256 * 1024
    assert len(state["incidents"]) <= 1000


# -- 4. text that people and tools render ---------------------------------------------------------

def test_webhook_text_cannot_ping_channel_or_disguise_a_link(run_check, gateway, recorder):
    gateway.add_channel("<!channel> <http://evil.example/qr|Scan the new QR here>",
                        "qr_required", "qr")
    run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook"})
    text = json.loads(recorder.requests[0]["body"])["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text


def test_format_and_control_characters_never_reach_outputs(run_check, gateway, home, recorder,
                                                           tmp_path):
    sink = tmp_path / "alert.json"
    gateway.add_channel("bad\u202eid\u200b\u009b", "qr_required", "qr")
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook",
                         "HEALTHCHECK_ALERT_COMMAND": f"tee {sink}"})
    texts = [run.stdout, run.log, recorder.requests[0]["body"], sink.read_text(),
             (home / "logs" / "healthcheck-state.json").read_text()]
    for text in texts:
        for char in ("\u202e", "\u200b", "\u009b"):
            assert char not in text
    json_run = run_check("--json", "--dry-run")
    json_run.stdout.encode("ascii")


# -- 5. secrets, everywhere -----------------------------------------------------------------------

HEX_SECRET = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"


def test_channel_id_holding_the_secret_is_refused_and_never_stored(run_check, gateway, home):
    gateway.add_channel(f"ch-{SECRET}", "disconnected")
    run = run_check()
    assert SECRET[:8] not in run.everything() and SECRET[-8:] not in run.everything()
    assert "holding a secret" in run.stdout
    assert gateway.count("qr") == 0


@pytest.mark.parametrize("form", ["upper", "percent", "base64", "base64-shifted"])
def test_echoed_secret_is_masked_in_every_form(run_check, gateway, form):
    echoed = {"upper": HEX_SECRET.upper(), "percent": quote(f"s/{HEX_SECRET.lower()}&", safe=""),
              "base64": base64.b64encode(HEX_SECRET.lower().encode()).decode(),
              "base64-shifted": base64.b64encode(b"Basic " + HEX_SECRET.lower().encode())
              .decode()}[form]
    gateway.secret = HEX_SECRET.lower()
    gateway.add_channel("imobsites", "disconnected")
    gateway.set_fault("qr", json_fault(500, {"success": False, "error": f"bad key {echoed}"}))
    run = run_check(env={"WPP_GATEWAY_SECRET": HEX_SECRET.lower()})
    assert run.code == 2
    everything = run.everything()
    assert echoed not in everything and echoed[4:-4] not in everything


def test_alert_command_gets_no_secret_in_its_environment(run_check, gateway, tmp_path):
    dump = tmp_path / "env.txt"
    gateway.add_channel("imobsites", "qr_required", "qr")
    run_check(env={"HEALTHCHECK_ALERT_COMMAND": f"sh -c 'env > {dump}'",
                   "INFRA_SECRET_KEY": "infra-key-0123456789",
                   "HEALTHCHECK_SMTP_PASSWORD": "smtp-pass-0123456789"},
              environ={"WPP_GATEWAY_SECRET": SECRET, "SOME_COPY": SECRET})
    environment = dump.read_text()
    for secret in (SECRET, "infra-key-0123456789", "smtp-pass-0123456789"):
        assert secret not in environment
    assert "WPP_GATEWAY_SECRET" not in environment and "SOME_COPY" not in environment


# -- 6. the rest ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dots", [".", ".."])
def test_dot_ids_are_refused_and_never_requested(run_check, gateway, dots):
    gateway.raw_list = {"channels": [{"id": dots, "status": "disconnected"}]}
    run = run_check()
    assert run.code == 3 and "cannot be a channel" in run.stdout
    assert gateway.count("qr") == 0 and gateway.count("start") == 0


def test_secrets_sent_in_clear_are_warned_about():
    smtp = SmtpSettings(host="smtp.example.com", port=587, user="u", password="pw-0123456",
                           sender="a@b", recipients=("c@d",), tls="off")
    settings = Settings(base_url="http://gw.example.com:8443", secret="x" * 10,
                           secrets_to_hide=(), smtp=smtp)
    warnings = " ".join(setup_warnings(settings))
    assert "crosses the network in clear on every run" in warnings
    assert "the SMTP password crosses the network in clear" in warnings
    local = Settings(base_url="http://127.0.0.1:8443", secret="x" * 10, secrets_to_hide=())
    assert setup_warnings(local) == []
