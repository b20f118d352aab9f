"""Connected is not alive: silent channels, read from real SQLite, MariaDB and PostgreSQL databases.

Every time is made relative to now, so the tests hold on any day and in any time zone.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import free_port

NOW = datetime.now(timezone.utc)


def every(step: timedelta, start: timedelta, end: timedelta = timedelta(0)) -> list[datetime]:
    """Times from `start` ago up to `end` ago, one per `step`."""
    times, at = [], NOW - start
    while at <= NOW - end:
        times.append(at)
        at += step
    return times


def busy(db, channel="pixel12digital", quiet_for=timedelta(hours=2), days=8, **kw):
    """A busy number: a message every 10 minutes for `days`, none for the last `quiet_for`."""
    db.add(channel, every(timedelta(minutes=10), timedelta(days=days), quiet_for), **kw)


def daily(db, channel="imobsites", last=timedelta(hours=30), days=10):
    """A quiet number: one message a day, the latest `last` ago."""
    db.add(channel, [NOW - last - timedelta(days=n) for n in range(days)])


@pytest.fixture
def alerting(recorder):
    return {"HEALTHCHECK_ALERT_WEBHOOK_URL": recorder.url + "/hooks/T000/B000/tok3nXYZ"}


def counted(entry: dict) -> int:
    """Inbound messages a channel's kept history holds."""
    return sum(int(c) for c in entry["counts"].split(",") if c)


def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


# -- silence, on every database -----------------------------------------------------------------

def test_busy_connected_channel_gone_quiet_is_silent_and_alerted_at_once(
        run_check, activity_db, recorder, alerting):
    busy(activity_db)
    daily(activity_db)
    run = run_check(env={**activity_db.settings(), **alerting})
    assert run.code == 1, run.stdout + run.stderr
    assert run.first_line.startswith("WHATSAPP SESSIONS WARNING - 1 connected but silent")
    assert "pixel12digital" in run.first_line and "imobsites" not in run.stdout
    assert "no inbound message for 2 h" in run.stdout and "restart the session" in run.stdout
    assert "silent" in run.log
    [alert] = recorder.json_bodies()
    [item] = alert["items"]
    assert item["reason"] == "silent" and item["id"] == "pixel12digital"
    assert item["expected_inbound"] >= 7
    assert "connected but silent" in alert["text"] and "phone is online" in alert["text"]


def test_silent_channel_in_json_has_last_inbound_and_expected(run_check, activity_db):
    busy(activity_db)
    run = run_check("--json", "--dry-run", env=activity_db.settings())
    report = json.loads(run.stdout)
    channel = {c["id"]: c for c in report["channels"]}["pixel12digital"]
    assert (channel["outcome"], channel["action"]) == ("silent", "alert_silent")
    last = datetime.fromisoformat(channel["last_inbound_at"])
    assert abs((NOW - last) - timedelta(hours=2)) < timedelta(minutes=11)
    assert 7 <= channel["expected_inbound"] <= 15  # 6 an hour for 2 hours
    assert report["activity"] == {"read": True, "error": None, "incident": None}


def test_quiet_number_is_not_flagged_before_its_ceiling(run_check, activity_db):
    daily(activity_db, last=timedelta(hours=60))
    busy(activity_db, quiet_for=timedelta(minutes=20))  # busy, but only 20 min quiet
    run = run_check(env=activity_db.settings())
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout == "" and run.log == ""


def test_silence_ends_with_a_recovery_line_and_a_resolved_alert(run_check, activity_db, recorder,
                                                                alerting, home):
    busy(activity_db)
    assert run_check(env={**activity_db.settings(), **alerting}).code == 1
    activity_db.add("pixel12digital", [NOW - timedelta(minutes=1)])
    run = run_check(env={**activity_db.settings(), **alerting})
    assert run.code == 0, run.stdout + run.stderr
    assert "channel pixel12digital receives messages again after" in run.log
    assert [b["state"] for b in recorder.json_bodies()] == ["WARNING", "RESOLVED"]
    assert "pixel12digital" not in state_of(home)["incidents"]


# -- the rules ----------------------------------------------------------------------------------

def test_ceiling_flags_a_channel_whatever_its_history(run_check, sqlite_db):
    # Two days of history: too short for its own rhythm, but 73 h of silence passes the ceiling.
    sqlite_db.add("imobsites", every(timedelta(hours=6), timedelta(hours=121), timedelta(hours=73)))
    run = run_check("--json", "--dry-run", env=sqlite_db.settings())
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["imobsites"]
    assert channel["outcome"] == "silent", run.stdout


def test_per_channel_ceiling_and_off(run_check, sqlite_db):
    busy(sqlite_db)
    daily(sqlite_db, last=timedelta(hours=30))
    run = run_check("--json", "--dry-run", env=sqlite_db.settings(
        HEALTHCHECK_SILENT_HOURS_BY_CHANNEL="PIXEL12digital=off, imobsites=24"))
    outcomes = {c["id"]: c["outcome"] for c in json.loads(run.stdout)["channels"]}
    assert outcomes == {"pixel12digital": None, "imobsites": "silent"}


def test_channel_with_no_history_is_never_silent(run_check, sqlite_db):
    sqlite_db.add("someone-else", [NOW - timedelta(days=20)])
    run = run_check(env=sqlite_db.settings(HEALTHCHECK_SILENT_HOURS="1"))
    assert run.code == 0 and run.stdout == ""


def test_naive_times_are_read_in_the_machine_zone(run_check, activity_db):
    """Run in Sao Paulo (UTC-3): naive times written there must not look 3 hours off."""
    from zoneinfo import ZoneInfo
    zone = ZoneInfo("America/Sao_Paulo")
    activity_db.add("pixel12digital", every(timedelta(minutes=10), timedelta(days=8),
                                            timedelta(minutes=30)), zone=zone)
    run = run_check("--json", "--dry-run", env=activity_db.settings(),
                    environ={"TZ": "America/Sao_Paulo"})
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["pixel12digital"]
    assert channel["outcome"] is None, run.stdout  # 30 min quiet: under the 60 min minimum


def test_activity_tz_setting_names_the_zone_of_naive_times(run_check, sqlite_db):
    from zoneinfo import ZoneInfo
    zone = ZoneInfo("Asia/Tokyo")  # UTC+9: read as UTC, every message would lie in the future
    sqlite_db.add("pixel12digital", every(timedelta(minutes=10), timedelta(days=8),
                                          timedelta(hours=2)), zone=zone)
    run = run_check("--json", "--dry-run", env=sqlite_db.settings(
        HEALTHCHECK_ACTIVITY_TZ="Asia/Tokyo"), environ={"TZ": "UTC"})
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["pixel12digital"]
    assert channel["outcome"] == "silent", run.stdout


def test_outbound_messages_do_not_count_as_activity(run_check, activity_db):
    if activity_db.kind == "sqlite":
        pytest.skip("the plain table holds inbound messages only")
    busy(activity_db)
    activity_db.add("pixel12digital", [NOW - timedelta(minutes=5)], outbound=True)
    run = run_check("--json", "--dry-run", env=activity_db.settings())
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["pixel12digital"]
    assert channel["outcome"] == "silent"


# -- reading only what is new ---------------------------------------------------------------------

def test_each_run_reads_only_what_is_new(run_check, sqlite_db, home):
    # A query that ignores :since returns every row each time: nothing may be counted twice.
    sqlite_db.add("pixel12digital", every(timedelta(hours=1), timedelta(days=3)))
    settings = sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELECT channel, received_at "
                                                             "FROM inbound")
    run_check(env=settings)
    first = state_of(home)["activity"]
    run_check(env=settings)
    second = state_of(home)["activity"]
    total = counted(second["channels"]["pixel12digital"])
    assert first == second and total == 73
    sqlite_db.add("pixel12digital", [datetime.now(timezone.utc)])  # after the high-water mark
    run_check(env=settings)
    assert counted(state_of(home)["activity"]["channels"]["pixel12digital"]) == 74


def test_history_is_kept_only_for_listed_channels_and_four_weeks(run_check, sqlite_db, home):
    sqlite_db.add("pixel12digital", [NOW - timedelta(days=40), NOW - timedelta(days=1)])
    sqlite_db.add("not-a-gateway-channel", [NOW - timedelta(days=1)])
    sqlite_db.add("x" * 300, [NOW - timedelta(days=1)])
    run_check(env=sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELECT channel, received_at "
                                                                "FROM inbound"))
    channels = state_of(home)["activity"]["channels"]
    assert set(channels) == {"pixel12digital"}
    assert counted(channels["pixel12digital"]) == 1


def test_panel_setting_reads_the_panels_own_database(run_check, database_servers):
    from conftest import ActivityDatabase
    server = database_servers("mariadb")
    db = ActivityDatabase("mariadb", server.new_database())
    busy(db)
    name = db.url.rsplit("/", 1)[1]
    run = run_check("--json", "--dry-run", env={
        "HEALTHCHECK_ACTIVITY_DB": "panel", "DB_HOST": "127.0.0.1", "DB_PORT": str(server.port),
        "DB_NAME": name, "DB_USER": "healthcheck", "DB_PASS": "db-Pa55w0rd-4f3e2d1c"})
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["pixel12digital"]
    assert channel["outcome"] == "silent", run.stdout + run.stderr


# -- the source failing ---------------------------------------------------------------------------

FAILING_SOURCES = {
    "unreachable": ({"HEALTHCHECK_ACTIVITY_DB": "postgresql+psycopg://u:pw-unused-4711@127.0.0.1:{port}/db"},
                    "check that the database is running"),
    "bad SQL": ({"HEALTHCHECK_ACTIVITY_QUERY": "SELEC channel FROM inbound"},
                "check HEALTHCHECK_ACTIVITY_QUERY"),
    "wrong columns": ({"HEALTHCHECK_ACTIVITY_QUERY": "SELECT channel, received_at, 1 FROM inbound"},
                      "must return two: channel, received_at"),
    "not a time": ({"HEALTHCHECK_ACTIVITY_QUERY": "SELECT channel, 'soon' FROM inbound"},
                   "neither a date and time nor epoch seconds"),
    "missing driver": ({"HEALTHCHECK_ACTIVITY_DB": "mysql+mysqldb://u:pw-unused-4711@127.0.0.1:{port}/db"},
                       "requirements-activity.txt"),
    "slow query": ({"HEALTHCHECK_ACTIVITY_TIMEOUT": "1", "HEALTHCHECK_ACTIVITY_QUERY":
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
                    "SELECT 'pixel12digital', x FROM n WHERE x < 0"},
                   "did not finish within 1s (HEALTHCHECK_ACTIVITY_TIMEOUT)"),
}


@pytest.mark.parametrize("case", sorted(FAILING_SOURCES))
def test_failing_source_is_one_line_and_the_kicks_go_on(run_check, sqlite_db, gateway, case):
    busy(sqlite_db)
    gateway.add_channel("imobsites", "disconnected")
    settings, says = FAILING_SOURCES[case]
    settings = {k: v.format(port=free_port()) for k, v in settings.items()}
    run = run_check(env={**sqlite_db.settings(), **settings})
    # WARNING (the kick) outranks UNKNOWN (the source) in the monitoring-plugins order.
    assert run.code == 1, run.stdout + run.stderr
    assert run.first_line.startswith("WHATSAPP SESSIONS WARNING - 1 of 2 channels not connected")
    assert "the activity source" in run.stdout and says in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert gateway.channels["imobsites"]["status"] == "connected"  # kicked all the same
    assert says in run.log


def test_refused_password_is_named_and_never_shown(run_check, database_servers, gateway):
    server = database_servers("mariadb")
    url = server.new_database().replace("db-Pa55w0rd-4f3e2d1c", "wr0ng-Passw0rd-77")
    run = run_check(env={"HEALTHCHECK_ACTIVITY_DB": url,
                         "HEALTHCHECK_ACTIVITY_QUERY": "SELECT 'a', NOW()"})
    assert run.code == 3
    assert "Access denied" in run.stdout and "user and password" in run.stdout
    assert "wr0ng-Passw0rd" not in run.everything()


def test_failing_source_reaches_a_person_after_alert_after_runs(run_check, sqlite_db, recorder,
                                                               alerting):
    settings = {**sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELEC 1"), **alerting}
    run_check(env=settings)
    assert recorder.requests == []
    run_check(env=settings)
    [alert] = recorder.json_bodies()
    assert alert["items"][0]["subject"] == "activity"
    assert "the activity source keeps failing" in alert["text"]
    run_check(env=sqlite_db.settings(**alerting))
    assert recorder.json_bodies()[-1]["state"] == "RESOLVED"


def test_silent_incident_stays_open_while_the_source_fails(run_check, sqlite_db, home):
    busy(sqlite_db)
    run_check(env=sqlite_db.settings())
    run_check(env=sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY="SELEC 1"))
    assert state_of(home)["incidents"]["pixel12digital"]["reason"] == "silent"


def test_bad_activity_settings_are_one_line(run_check):
    for env, says in (({"HEALTHCHECK_ACTIVITY_DB": "not a url"}, "must be a database URL"),
                      ({"HEALTHCHECK_ACTIVITY_DB": "sqlite:///x.db"},
                       "HEALTHCHECK_ACTIVITY_QUERY is missing"),
                      ({"HEALTHCHECK_ACTIVITY_DB": "panel"}, "DB_HOST is missing"),
                      ({"HEALTHCHECK_ACTIVITY_DB": "sqlite:///x.db",
                        "HEALTHCHECK_ACTIVITY_QUERY": "SELECT 1", "HEALTHCHECK_ACTIVITY_TZ":
                        "Mars/Olympus"}, "HEALTHCHECK_ACTIVITY_TZ must be a time zone"),
                      ({"HEALTHCHECK_ACTIVITY_DB": "sqlite:///x.db",
                        "HEALTHCHECK_ACTIVITY_QUERY": "SELECT 1",
                        "HEALTHCHECK_SILENT_HOURS_BY_CHANNEL": "imobsites=soon"},
                       "channel=hours or channel=off")):
        run = run_check(env=env)
        assert run.code == 3 and says in run.stdout, run.stdout
        assert "Traceback" not in run.stderr
