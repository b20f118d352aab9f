"""The activity source's times (issue 14 items 2 and 3, issue 15 item 11).

A row with an impossible time, a row from the future, a database in another zone, and the hour
a clock change repeats: none may stop a run, hide a later message or make a channel look silent.
The clock changes are replayed in-process against real SQLite and PostgreSQL databases, with the
run's time passed to read_activity as the cron run passes it (the script has no clock to set).
"""

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, ActivityDatabase
from test_silent_channels import every

sys.path.insert(0, str(ROOT))
from healthcheck.activity import clock_repeats, hourly_counts, learn_activity, to_epoch
from healthcheck.constants import ACTIVITY_AHEAD_TOLERANCE
from healthcheck.database import read_activity
from healthcheck.settings import ActivitySettings
from healthcheck.silence import assess_silence

NOW = datetime.now(timezone.utc)
EVERYTHING = "SELECT channel, received_at FROM inbound"  # a query that ignores :since


def state_of(home) -> dict:
    return json.loads((home / "logs" / "healthcheck-state.json").read_text())


def counted(entry: dict) -> int:
    return sum(int(c) for c in entry["counts"].split(",") if c)


def add_raw(db: ActivityDatabase, channel: str, values: list[str]) -> None:
    """Store rows whose received_at is exactly the text given (SQLite keeps it as is)."""
    db.execute("INSERT INTO inbound VALUES (:c, :t)", rows=[{"c": channel, "t": v} for v in values])


# -- issue 14 item 2: a time no date can show -----------------------------------------------------

def test_rows_with_unusable_times_are_skipped_counted_and_the_kicks_go_on(run_check, sqlite_db,
                                                                        gateway, home):
    sqlite_db.add("pixel12digital", every(timedelta(minutes=10), timedelta(days=2)))
    microseconds = str(int(NOW.timestamp() * 1_000_000))  # read as ms: year 55000 and more
    add_raw(sqlite_db, "pixel12digital", [microseconds, "NaN", "inf"])
    gateway.add_channel("imobsites", "disconnected")
    settings = sqlite_db.settings(HEALTHCHECK_ACTIVITY_QUERY=EVERYTHING)
    for attempt in (1, 2):  # the second run must not inherit a poisoned mark
        gateway.channels["imobsites"]["status"] = "disconnected"
        run = run_check(env=settings)
        assert run.code == 1, run.stdout + run.stderr
        assert "internal error" not in run.stdout and "Traceback" not in run.stdout + run.stderr
        assert gateway.channels["imobsites"]["status"] == "connected"  # kicked
        assert run.stdout.count("3 activity rows with an unusable time skipped") == 1
        assert run.log.count("activity rows with an unusable time skipped") == attempt
    activity = state_of(home)["activity"]
    assert activity["since"] <= time.time()
    assert counted(activity["channels"]["pixel12digital"]) == 289  # 2 days every 10 min, once


def test_a_mark_poisoned_by_an_earlier_version_is_set_aside(run_check, sqlite_db, gateway, home):
    sqlite_db.add("pixel12digital", every(timedelta(minutes=10), timedelta(days=2)))
    settings = sqlite_db.settings()
    assert run_check(env=settings).code == 0
    path = home / "logs" / "healthcheck-state.json"
    for poisoned in (1_796_000_000_000.0, "NaN", 4_102_444_800):  # year 58894, NaN, 2100
        state = json.loads(path.read_text())
        state["activity"]["since"] = poisoned
        path.write_text(json.dumps(state).replace('"NaN"', "NaN"))
        gateway.add_channel("imobsites", "disconnected")
        run = run_check(env=settings)
        assert run.code == 1, run.stdout + run.stderr
        assert gateway.channels["imobsites"]["status"] == "connected"
        assert "the saved activity reading mark" in run.stdout and "learned afresh" in run.log
        activity = state_of(home)["activity"]
        assert activity["since"] <= time.time()
        assert counted(activity["channels"]["pixel12digital"]) == 289  # learned afresh: not doubled


def test_unusable_times_never_raise_in_the_pure_steps():
    now = NOW.timestamp()
    tally: dict = {}
    events = [("ch", now - 60), ("ch", float("nan")), ("ch", float("inf")), ("ch", 1.8e12),
              ("ch", to_epoch(10 ** 400, None)), ("ch", to_epoch(datetime.max, None))]
    learned = learn_activity({}, events, now, {"ch"}, tally=tally)
    assert tally["unusable"] == 5 and learned["since"] == now - 60
    assert learn_activity({"since": float("nan")}, [("ch", now)], now, {"ch"})["since"] == now


# -- issue 14 item 3: a row from the future --------------------------------------------------------

def test_a_row_dated_2099_neither_hides_a_silence_nor_later_messages(run_check, sqlite_db, home):
    sqlite_db.add("pixel12digital", every(timedelta(minutes=10), timedelta(days=8),
                                          timedelta(hours=2)))
    add_raw(sqlite_db, "pixel12digital", ["2099-01-01 00:00:00"])
    settings = sqlite_db.settings()
    run = run_check("--json", env=settings)
    report = json.loads(run.stdout)
    channel = {c["id"]: c for c in report["channels"]}["pixel12digital"]
    assert channel["outcome"] == "silent", run.stdout  # the 2099 row does not make it look alive
    [note] = [n for n in report["notes"] if "unusable time" in n["message"]]
    assert note["state"] == "WARNING" and note["message"].startswith("1 activity row with an")
    assert state_of(home)["activity"]["since"] <= time.time()
    sqlite_db.add("pixel12digital", [datetime.now(timezone.utc)])  # a real message, after 2099's
    run = run_check("--json", env=settings)
    channel = {c["id"]: c for c in json.loads(run.stdout)["channels"]}["pixel12digital"]
    assert channel["outcome"] is None, run.stdout
    assert "receives messages again" in run.log


def test_times_ahead_of_the_clock_name_the_zone_setting_and_declare_no_silence(run_check,
                                                                              sqlite_db, home):
    # The database keeps naive UTC times; this machine is in Sao Paulo (UTC-3) and
    # HEALTHCHECK_ACTIVITY_TZ is unset: every recent message reads 3 hours ahead.
    sqlite_db.add("pixel12digital", every(timedelta(minutes=5), timedelta(days=8)),
                  zone=timezone.utc)
    run = run_check(env=sqlite_db.settings(), environ={"TZ": "America/Sao_Paulo"})
    assert run.code == 1, run.stdout + run.stderr
    assert "connected but silent" not in run.first_line
    line = run.stdout.splitlines()[-1]
    assert line.split(" ", 1)[1].startswith("activity rows dated up to "), run.stdout
    assert "ahead of this machine's clock: check HEALTHCHECK_ACTIVITY_TZ" in line
    assert ("up to 3 h ahead" in line or "up to 2 h 5" in line) and "HEALTHCHECK_ACTIVITY_TZ" \
        in run.first_line
    assert len([t for t in run.log.splitlines() if t.endswith("] " + line)]) == 1
    activity = state_of(home)["activity"]
    assert activity["since"] <= time.time() + ACTIVITY_AHEAD_TOLERANCE
    assert activity["channels"]["pixel12digital"].get("ahead") is True
    run = run_check(env=sqlite_db.settings(HEALTHCHECK_ACTIVITY_TZ="UTC"),
                    environ={"TZ": "America/Sao_Paulo"})
    assert run.code == 0 and run.stdout == "", run.stdout


def test_a_channel_with_rows_ahead_is_never_called_silent():
    now = NOW.timestamp()
    old = [now - 6 * 3600 - i * 600 for i in range(12 * 144)]  # busy for 12 days, quiet 6 h
    learned = learn_activity({}, [("ch", t) for t in old] + [("ch", now + 3 * 3600)], now,
                                {"ch"})
    entry = learned["channels"]["ch"]
    assert entry["ahead"] is True and assess_silence(entry, now, 72, 60) is None
    alone = learn_activity({}, [("ch", t) for t in old], now, {"ch"})["channels"]["ch"]
    assert assess_silence(alone, now, 72, 60).rule == "history"


# -- issue 15 item 11: the clock changes, replayed ---------------------------------------------

#: (zone, change) -> the instant of the change, UTC.
CLOCK_CHANGES = {
    ("Europe/Lisbon", "autumn"): datetime(2026, 10, 25, 1, 0, tzinfo=timezone.utc),
    ("Europe/Lisbon", "spring"): datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc),
    ("America/New_York", "autumn"): datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc),
    ("America/New_York", "spring"): datetime(2026, 3, 8, 7, 0, tzinfo=timezone.utc),
}
MESSAGE_EVERY = timedelta(minutes=5)
CRON_EVERY = timedelta(minutes=15)


class NaiveLocalTable:
    """An inbound table with naive local times, as the panels keep them, on a real database."""

    def __init__(self, url: str, zone: ZoneInfo):
        import sqlalchemy
        self.url, self.zone = url, zone
        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        kind = "TEXT" if url.startswith("sqlite") else "TIMESTAMP"
        self._run(f"CREATE TABLE inbound (channel VARCHAR(64), received_at {kind})")

    def _run(self, statement: str, rows=None) -> None:
        import sqlalchemy
        with self.engine.begin() as connection:
            connection.execute(sqlalchemy.text(statement), rows or {})

    def add(self, channel: str, times: list[datetime]) -> None:
        if times:
            local = [t.astimezone(self.zone).replace(tzinfo=None) for t in times]
            self._run("INSERT INTO inbound VALUES (:c, :t)",
                      [{"c": channel, "t": t.isoformat(sep=" ") if "sqlite" in self.url else t}
                       for t in local])


def _times(start: datetime, end: datetime, step: timedelta = MESSAGE_EVERY) -> list[datetime]:
    out = []
    while start <= end:
        out.append(start)
        start += step
    return out


def replay(table: NaiveLocalTable, source: "ActivitySettings", turn: datetime,
           first_run: timedelta, cron_every: timedelta) -> None:
    """Cron runs from `first_run` after the change until 3 h after it, rows arriving meanwhile.

    A busy channel gets a message every 5 minutes; a zombie's last one is 30 min before the
    change. The busy one is never silent and its newest message is always known; the zombie is
    silent from 60 min of quiet on; at the end every row is counted once, 12 in each hour.
    """
    start, died, end = turn - timedelta(days=8), turn - timedelta(minutes=30), \
        turn + timedelta(hours=3)
    busy, zombie = _times(start, end), _times(start, died)
    history: dict = {}
    stored = start - MESSAGE_EVERY
    run_at = turn + first_run
    while run_at <= end:
        # What arrived since the last run, then the run itself at that moment.
        table.add("busy", [t for t in busy if stored < t <= run_at])
        table.add("zombie", [t for t in zombie if stored < t <= run_at])
        stored = run_at
        now = run_at.timestamp()
        history = read_activity(source, history, {"busy", "zombie"}, now,
                                   time.monotonic() + 60)
        live, dead = history["channels"]["busy"], history["channels"]["zombie"]
        newest = max(t for t in busy if t <= run_at)
        assert live["last"] == newest.timestamp(), \
            (run_at, datetime.fromtimestamp(live["last"], timezone.utc))
        assert assess_silence(live, now, 72, 60) is None, run_at
        quiet = run_at - died
        silence = assess_silence(dead, now, 72, 60)
        assert dead["last"] == max(t for t in zombie if t <= run_at).timestamp(), run_at
        assert (silence is not None) == (quiet >= timedelta(minutes=60)), (run_at, silence)
        run_at += cron_every
    stored_rows = [t for t in busy if t <= stored]
    hours = hourly_counts(history["channels"]["busy"])
    first_hour, last_hour = int(start.timestamp() // 3600) + 1, int(stored.timestamp() // 3600)
    assert [hours.get(h) for h in range(first_hour, last_hour)] == [12] * (last_hour - first_hour)
    assert sum(hours.values()) == len(stored_rows)
    assert sum(hourly_counts(history["channels"]["zombie"]).values()) == len(zombie)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("zone_name,change", sorted(CLOCK_CHANGES))
def test_clock_change_loses_and_double_counts_nothing(database_servers, kind, zone_name, change):
    """Cron every 15 min across the change, in the zone HEALTHCHECK_ACTIVITY_TZ names."""
    turn = CLOCK_CHANGES[(zone_name, change)]
    table = NaiveLocalTable(database_servers(kind).new_database(), ZoneInfo(zone_name))
    source = ActivitySettings(url=table.url, query="SELECT channel, received_at FROM inbound "
                                                      "WHERE received_at > :since", zone=zone_name)
    replay(table, source, turn, -timedelta(hours=2), CRON_EVERY)


SCHEDULES = {
    "hourly, 10 min before the change": (-timedelta(minutes=70), timedelta(hours=1), None),
    "every 7 min": (-timedelta(minutes=100), timedelta(minutes=7), None),
    "every 90 min, none in the repeated hour": (-timedelta(minutes=40), timedelta(minutes=90),
                                                None),
    "every 15 min, query ignoring :since": (-timedelta(hours=2), CRON_EVERY, EVERYTHING),
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("zone_name", ["Europe/Lisbon", "America/New_York"])
def test_repeated_hour_on_other_schedules(database_servers, zone_name, schedule):
    turn = CLOCK_CHANGES[(zone_name, "autumn")]
    first_run, cron_every, query = SCHEDULES[schedule]
    table = NaiveLocalTable(database_servers("sqlite").new_database(), ZoneInfo(zone_name))
    source = ActivitySettings(url=table.url, zone=zone_name, query=query or
                                 "SELECT channel, received_at FROM inbound "
                                 "WHERE received_at > :since")
    replay(table, source, turn, first_run, cron_every)


@pytest.fixture
def machine_zone(monkeypatch):
    """This process's own zone (what HEALTHCHECK_ACTIVITY_TZ unset means), set for one test."""
    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield use
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone_name", ["Europe/Lisbon", "America/New_York"])
def test_repeated_hour_in_the_machine_zone(database_servers, machine_zone, zone_name):
    machine_zone(zone_name)
    table = NaiveLocalTable(database_servers("sqlite").new_database(), ZoneInfo(zone_name))
    source = ActivitySettings(url=table.url, zone=None, query="SELECT channel, received_at "
                                 "FROM inbound WHERE received_at > :since")
    replay(table, source, CLOCK_CHANGES[(zone_name, "autumn")], -timedelta(hours=2), CRON_EVERY)


@pytest.mark.parametrize("zone_name", ["Europe/Lisbon", "America/New_York"])
def test_repeated_hour_read_by_a_first_run_after_it_counts_every_row(database_servers,
                                                                      zone_name):
    """No run saw the repeated hour: its rows are all counted once, in one pass or the other."""
    zone = ZoneInfo(zone_name)
    turn = CLOCK_CHANGES[(zone_name, "autumn")]
    table = NaiveLocalTable(database_servers("sqlite").new_database(), zone)
    rows = _times(turn - timedelta(days=2), turn + timedelta(hours=2))
    table.add("busy", rows)
    source = ActivitySettings(url=table.url, query=EVERYTHING, zone=zone_name)
    now = (turn + timedelta(hours=2)).timestamp()
    history = read_activity(source, {}, {"busy"}, now, time.monotonic() + 60)
    hours = hourly_counts(history["channels"]["busy"])
    assert sum(hours.values()) == len(rows)
    assert hours[int(turn.timestamp() // 3600) - 1] == hours[int(turn.timestamp() // 3600)] == 12
    again = read_activity(source, history, {"busy"}, now + 900, time.monotonic() + 60)
    assert again["channels"]["busy"]["counts"] == history["channels"]["busy"]["counts"]


def test_clock_repeats_finds_each_change_to_the_second():
    lisbon = ZoneInfo("Europe/Lisbon")
    turn = CLOCK_CHANGES[("Europe/Lisbon", "autumn")].timestamp()
    assert clock_repeats(lisbon, turn - 86400, turn + 86400) == [(turn, 3600.0)]
    spring = CLOCK_CHANGES[("Europe/Lisbon", "spring")].timestamp()
    assert clock_repeats(lisbon, spring - 86400, spring + 86400) == []
