"""Round three, the state file: it never outgrows its own read limit, a file set aside keeps the
incidents of channels that are down, and a channel missing from a few listings keeps its history;
the reconnects come before the activity read; `panel` reads DB_HOST=localhost as the socket.

Every time is made relative to now, so the tests hold on any day and in any time zone.
"""

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy

from healthcheck.activity import cap_history, learn_activity
from healthcheck.files import (
    _remove_old_asides,
    _salvage_state,
    _state_text,
    load_state,
    save_state,
)
from healthcheck.settings import _EnvSource, _panel_database_url
from healthcheck.silence import assess_silence
from healthcheck.text import Redactor

NOW = datetime.now(timezone.utc)
DAY = 86400
LIMIT = 4 * 1024 * 1024


def state_path(home):
    return home / "logs" / "healthcheck-state.json"


def state_of(home) -> dict:
    return json.loads(state_path(home).read_text())


def old_history(channels: int, now: float) -> dict:
    """A 1.1.0 history: one message a channel, 671 empty hours before it (about 800 bytes)."""
    base = int((now - 28 * DAY) // 3600)
    return {"since": now - 60, "channels": {
        f"channel-{n:05}": {"first": now - 60, "last": now - 60, "base": base,
                            "counts": "," * 671 + "1"} for n in range(channels)}}


# -- the size limit -------------------------------------------------------------------------------

def test_state_of_thousands_of_channels_stays_under_its_limit_and_is_read_next_run(
        run_check, gateway, home, sqlite_db):
    # Tests if 6,000 channels whose history spans four weeks (the costliest shape: two messages
    # 27 days apart) leave a state the next run reads, instead of one it sets aside as corrupt.
    names = [f"channel-{n:05}" for n in range(6000)]
    for name in names:
        gateway.add_channel(name, "connected")
    rows = [{"c": name, "t": (NOW - timedelta(days=days)).astimezone().replace(tzinfo=None)
             .isoformat(sep=" ", timespec="seconds")} for name in names for days in (27, 0.01)]
    sqlite_db.execute("INSERT INTO inbound VALUES (:c, :t)", rows=rows)
    settings = sqlite_db.settings(HEALTHCHECK_DEADLINE="120")
    first = run_check(env=settings, timeout=180)
    assert first.code == 0, first.stdout + first.stderr
    assert state_path(home).stat().st_size <= LIMIT
    assert "would be over its 4 MB limit: the activity history of" in first.log
    kept = state_of(home)["activity"]["channels"]
    assert 3000 < len(kept) < 6000
    second = run_check(env=settings, timeout=180)
    assert second.code == 0, second.stdout + second.stderr
    assert "unreadable" not in second.log
    assert not list((home / "logs").glob("*.corrupt-*"))
    assert state_path(home).stat().st_size <= LIMIT


def test_state_over_the_limit_keeps_the_incidents_of_channels_down(run_check, gateway, home,
                                                                   recorder):
    # Tests if a 1.1.0 state of 4.7 MB (6,000 channels' history) set aside still gives back the
    # incident of a channel down since the previous run: its "down for 2 runs" alert goes out.
    gateway.add_channel("imobsites", "disconnected", on_kick="stay_down")
    since = (datetime.now().astimezone() - timedelta(minutes=15)).isoformat(timespec="seconds")
    state = {"version": 1, "updated_at": since,
             "incidents": {"imobsites": {"since": since, "runs_down": 1, "kicks": 1,
                                         "alerted_at": None, "last_alert_at": None,
                                         "last_status": "disconnected", "status_since": since,
                                         "last_outcome": "reconnect_requested",
                                         "reason": "down"}},
             "pending_alerts": [], "warned": [],
             "activity": old_history(6000, NOW.timestamp())}
    state_path(home).parent.mkdir()
    state_path(home).write_text(json.dumps(state, indent=1))
    assert state_path(home).stat().st_size > LIMIT
    run = run_check(env={"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hook"})
    assert run.code == 1, run.stdout + run.stderr
    assert state_of(home)["incidents"]["imobsites"]["runs_down"] == 2
    [alert] = recorder.json_bodies()
    assert [i["id"] for i in alert["items"]] == ["imobsites"]
    [line] = [x for x in run.log.splitlines() if "was unreadable" in x]
    assert "over the 4 MB limit" in line and "moved aside" in line
    assert "incidents and waiting alerts were kept, the activity history was dropped" in line


def test_state_files_set_aside_do_not_pile_up(run_check, gateway, home):
    # Tests if a state that is unreadable on every run leaves at most three copies behind.
    state_path(home).parent.mkdir()
    for run in range(5):
        state_path(home).write_text("{not json " + str(run))
        assert "moved aside" in run_check().log
    aside = sorted((home / "logs").glob("healthcheck-state.json.corrupt-*"))
    assert len(aside) == 3
    assert {p.read_text() for p in aside} == {"{not json 2", "{not json 3", "{not json 4"}


def test_only_our_own_regular_files_set_aside_are_removed(tmp_path):
    # Tests if a folder or a symlink named like a set-aside state is never removed.
    path = tmp_path / "state.json"
    target = tmp_path / "precious"
    target.write_text("keep me")
    (tmp_path / "state.json.corrupt-0-link").symlink_to(target)
    (tmp_path / "state.json.corrupt-0-dir").mkdir()
    for n in range(5):
        aside = tmp_path / f"state.json.corrupt-2026010{n}"
        aside.write_text(str(n))
        os.utime(aside, (1_700_000_000 + n, 1_700_000_000 + n))
    _remove_old_asides(path)
    left = sorted(p.name for p in tmp_path.glob("state.json.corrupt-*"))
    assert left == ["state.json.corrupt-0-dir", "state.json.corrupt-0-link",
                    "state.json.corrupt-20260102", "state.json.corrupt-20260103",
                    "state.json.corrupt-20260104"]
    assert target.read_text() == "keep me"


def test_salvage_reads_the_incidents_of_a_state_cut_inside_its_history():
    # Tests if a state file cut anywhere in its history still gives back its incidents.
    state = {"version": 1, "incidents": {"imobsites": {"runs_down": 3}},
             "pending_alerts": [{"text": "kept"}], "warned": ["ab12"],
             "activity": old_history(50, NOW.timestamp())}
    text = _state_text(state)
    cut = text[:text.index('"channel-00020"') + 30]
    salvaged = _salvage_state(cut)
    assert salvaged["incidents"] == {"imobsites": {"runs_down": 3}}
    assert salvaged["pending_alerts"] == [{"text": "kept"}] and salvaged["warned"] == ["ab12"]
    assert "activity" not in salvaged
    assert _salvage_state(text[:text.index('"imobsites"') + 5]) is None


def test_history_cap_drops_the_longest_unlisted_first_then_the_oldest_heard_from():
    # Tests if the cap takes first what a silence rule is least likely to need.
    now = NOW.timestamp()
    channels = {
        "busy-today": {"first": now - 20 * DAY, "last": now - 60, "base": 1, "counts": "5"},
        "quiet-for-a-week": {"first": now - 20 * DAY, "last": now - 7 * DAY, "base": 1,
                             "counts": "5"},
        "gone-3-days": {"first": now - 20 * DAY, "last": now - 60, "base": 1, "counts": "5",
                        "unlisted_since": now - 3 * DAY},
        "gone-2-hours": {"first": now - 20 * DAY, "last": now - 60, "base": 1, "counts": "5",
                         "unlisted_since": now - 7200}}
    history = {"since": now, "channels": channels}
    order = []
    for excess in range(1, 5):
        capped, dropped = cap_history(history, excess * 150)
        order.append(sorted(set(channels) - set(capped["channels"])))
        assert dropped == len(order[-1]) and capped["since"] == now
    assert order == [["gone-3-days"], ["gone-2-hours", "gone-3-days"],
                     ["gone-2-hours", "gone-3-days", "quiet-for-a-week"],
                     sorted(channels)]


def test_save_state_never_writes_more_than_load_state_reads(tmp_path):
    # Tests if 20,000 channels' history is cut to fit, incidents whole, with one line saying so.
    now = NOW.timestamp()
    state = {"version": 1, "incidents": {"imobsites": {"runs_down": 1}}, "pending_alerts": [],
             "activity": old_history(20000, now)}
    path = tmp_path / "state.json"
    line = save_state(path, state, Redactor())
    assert path.stat().st_size <= LIMIT
    assert line.startswith(f"state file {path} would be over its 4 MB limit: the activity "
                           f"history of ")
    loaded, notes = load_state(path, read_only=False)
    assert notes == [] and loaded["incidents"] == {"imobsites": {"runs_down": 1}}
    assert 20000 - int(line.split("history of ")[1].split()[0]) == \
        len(loaded["activity"]["channels"])


# -- a channel that leaves the listing ------------------------------------------------------------

def learn(previous, start, end, now, listed, expected=()):
    """One run at `now`: the messages of one channel every 10 minutes from start to end."""
    events = [("pixel12digital", t) for t in range(int(start), int(end), 600)]
    return learn_activity(previous, events, now, listed, expected=expected)


def test_a_channel_missing_for_two_hours_keeps_its_history_and_its_zombie_is_caught():
    # Tests if 28 days of history survive two hours off the listing, so that a zombie three days
    # later is caught by its own rhythm (the rule needs 7 days of history).
    now = NOW.timestamp()
    gone = now - 3 * DAY - 2 * 3600
    history = learn({}, now - 20 * DAY, gone, gone, {"pixel12digital"})
    history = learn(history, gone, gone + 3600, gone + 3600, set())  # missing, messages go on
    assert history["channels"]["pixel12digital"]["unlisted_since"] == gone + 3600
    back = gone + 2 * 3600
    history = learn(history, back, now - 2 * 3600, now - 2 * 3600, {"pixel12digital"})
    entry = history["channels"]["pixel12digital"]
    assert "unlisted_since" not in entry and entry["first"] <= now - 19 * DAY
    silence = assess_silence(entry, now, ceiling_hours=72, min_minutes=60)
    assert silence is not None and silence.rule == "history"


def test_history_is_kept_28_days_after_the_last_listing_and_always_when_expected():
    # Tests if an unlisted channel's history goes after four weeks, unless it is expected.
    now = NOW.timestamp()
    # Messages before the first run (rows ahead of a run's clock are not counted yet).
    history = learn({}, now - 40 * DAY, now - 31 * DAY, now - 30 * DAY, {"pixel12digital"})
    history = learn(history, 0, 0, now - 29 * DAY, set())
    assert "pixel12digital" in learn(history, 0, 0, now - 2 * DAY, set())["channels"]
    assert learn(history, 0, 0, now, set())["channels"] == {}
    kept = learn(history, 0, 0, now, set(), expected=("pixel12digital",))["channels"]
    assert kept["pixel12digital"]["unlisted_since"] == now - 29 * DAY


def test_a_channel_missing_from_one_run_keeps_its_history_in_the_state(run_check, gateway, home,
                                                                       sqlite_db):
    # Tests if the real run keeps the history of a channel the gateway did not list this time.
    sqlite_db.add("imobsites", [NOW - timedelta(hours=h) for h in range(1, 48)])
    run_check(env=sqlite_db.settings())
    before = state_of(home)["activity"]["channels"]["imobsites"]
    del gateway.channels["imobsites"]
    run_check(env=sqlite_db.settings())
    after = state_of(home)["activity"]["channels"]["imobsites"]
    assert after.pop("unlisted_since") > NOW.timestamp() and after == before


# -- the deadline: reconnects first, and no count of a call never made ----------------------------

LOCKS = {"mariadb": "LOCK TABLES webhook_raw_logs WRITE",
         "postgresql": 'LOCK TABLE "Message" IN ACCESS EXCLUSIVE MODE'}


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_a_locked_activity_table_never_starves_the_reconnects(run_check, gateway, home,
                                                              database_servers, kind):
    # Tests if, with the activity table locked by another connection and a short -t, the
    # reconnect call still reaches the gateway, and the activity read gets what is left.
    from conftest import ActivityDatabase
    db = ActivityDatabase(kind, database_servers(kind).new_database())
    db.add("pixel12digital", [NOW - timedelta(minutes=5)])
    gateway.add_channel("imobsites", "disconnected")
    with db.engine.connect() as holder:
        holder.execute(sqlalchemy.text(LOCKS[kind]))  # held until the block ends
        run = run_check("-t", "8", env=db.settings())
        holder.rollback()
    assert gateway.count("qr") == 1, run.stdout + run.stderr
    assert gateway.channels["imobsites"]["status"] == "connected"
    assert "kicked=1;" in run.perfdata
    assert "channel imobsites: status disconnected, reconnect_requested" in run.stdout
    assert "the activity source: the query did not finish within" in run.stdout
    assert "(what was left of HEALTHCHECK_DEADLINE)" in run.stdout
    assert state_of(home)["incidents"]["imobsites"]["kicks"] == 1


def test_a_call_the_deadline_left_no_time_for_is_never_counted(run_check, gateway, home):
    # Tests if, with one worker and a first call that uses the whole budget, the second channel
    # is reported as not called, and neither perfdata nor its incident counts a kick.
    gateway.add_channel("imobsites", "disconnected")
    gateway.add_channel("orsegups", "disconnected")
    gateway.latency["qr"] = 6
    run = run_check("-t", "4", env={"HEALTHCHECK_WORKERS": "1", "HEALTHCHECK_QR_TIMEOUT": "10"})
    assert gateway.count("qr") == 1, run.stdout + run.stderr
    assert "kicked=1;" in run.perfdata and "failed=1;" in run.perfdata
    assert ("channel orsegups: status disconnected, not_called: deadline: no time left in "
            "HEALTHCHECK_DEADLINE for this call; it was not made") in run.stdout
    assert ("channel imobsites: status disconnected, failed: deadline: the call did not finish "
            "within HEALTHCHECK_DEADLINE") in run.stdout
    incidents = state_of(home)["incidents"]
    assert (incidents["imobsites"]["kicks"], incidents["orsegups"]["kicks"]) == (1, 0)
    assert "last_kick_at" not in incidents["orsegups"]


# -- panel mode: DB_HOST=localhost is the socket ---------------------------------------------------

LOCAL_PASSWORD = "l0cal-0nly-Pa55-7c6b5a"


def panel_env(db, **extra) -> dict:
    return {"HEALTHCHECK_ACTIVITY_DB": "panel", "DB_NAME": db.url.rsplit("/", 1)[1],
            "DB_USER": "panel_local", "DB_PASS": LOCAL_PASSWORD, **extra}


def test_panel_reads_localhost_as_the_socket_like_the_panels_php(run_check, database_servers):
    # Tests if a user granted only @'localhost' on a server with --skip-name-resolve (refused
    # over TCP) reads the activity through DB_SOCKET, as the panel's mysqli does.
    from conftest import ActivityDatabase
    server = database_servers("mariadb")
    db = ActivityDatabase("mariadb", server.new_database())
    db.add("pixel12digital", [NOW - timedelta(days=8) + timedelta(minutes=10 * i)
                              for i in range(8 * 144 - 12)])
    server.add_local_user("panel_local", LOCAL_PASSWORD, db.url.rsplit("/", 1)[1])
    run = run_check("--json", "--dry-run", env=panel_env(
        db, DB_HOST="localhost", DB_PORT=str(server.port), DB_SOCKET=str(server.socket)))
    report = json.loads(run.stdout)
    assert report["activity"]["read"] is True, run.stdout + run.stderr
    channel = {c["id"]: c for c in report["channels"]}["pixel12digital"]
    assert channel["outcome"] == "silent"
    assert LOCAL_PASSWORD not in run.everything()


def test_panel_over_tcp_is_refused_for_a_localhost_only_user(run_check, database_servers):
    # Tests if 127.0.0.1 stays TCP (as for mysqli): the same user is refused there, in one line.
    from conftest import ActivityDatabase
    server = database_servers("mariadb")
    db = ActivityDatabase("mariadb", server.new_database())
    server.add_local_user("panel_local2", LOCAL_PASSWORD, db.url.rsplit("/", 1)[1])
    run = run_check(env=panel_env(db, DB_USER="panel_local2", DB_HOST="127.0.0.1",
                                  DB_PORT=str(server.port), DB_SOCKET=str(server.socket)))
    assert run.code == 3
    assert "Access denied for user" in run.stdout and "check that the database is running" \
        in run.stdout
    assert LOCAL_PASSWORD not in run.everything()


def test_localhost_finds_the_usual_socket_paths_in_order_and_falls_back_to_tcp(
        tmp_path, database_servers):
    # Tests if, without DB_SOCKET, the first usual path that is a socket is used, a regular file
    # at a usual path is not, and with none at all localhost is TCP as before.
    server = database_servers("mariadb")
    decoy = tmp_path / "mysql.sock"
    decoy.write_text("not a socket")
    environ = {"DB_HOST": "localhost", "DB_NAME": "panel", "DB_USER": "u", "DB_PASS": "p/w",
               "DB_PORT": "3307"}
    source = _EnvSource(tmp_path / "no.env", environ, explicit=False)
    url = _panel_database_url(source, sockets=(str(tmp_path / "none"), str(decoy),
                                                  str(server.socket)))
    assert url == (f"mysql+pymysql://u:p%2Fw@localhost/panel?charset=utf8mb4"
                   f"&unix_socket={server.socket}")
    assert sqlalchemy.engine.make_url(url).query["unix_socket"] == str(server.socket)
    assert _panel_database_url(source, sockets=(str(decoy),)) == \
        "mysql+pymysql://u:p%2Fw@localhost:3307/panel?charset=utf8mb4"
    given = _EnvSource(tmp_path / "no.env", {**environ, "DB_SOCKET": "/srv/my.sock"}, False)
    assert _panel_database_url(given, sockets=(str(server.socket),)).endswith(
        "&unix_socket=/srv/my.sock")
