"""The node's clock against the database's: ``db.database_clock`` (what outbox leases are read
with), ``db.clock_offset`` and the every-minute check of ``portail/clock.py``, on SQLite and
PostgreSQL. (A node really running a minute ahead: ``tests/journeys/test_two_nodes.py``.)"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pytest

from portail import clock
from portail import db as database
from portail.background import Runner
from portail.config import Settings


@pytest.fixture
def handle(settings: Settings) -> Iterator[database.Database]:
    found = database.Database(settings)
    yield found
    found.dispose()


def test_the_database_clock_is_the_servers_on_postgresql_and_this_machines_on_sqlite(
    handle: database.Database,
) -> None:
    before = database.utcnow()
    with handle.session() as s:
        now = database.database_clock(s)
    after = database.utcnow()
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)
    # One machine here: both clocks agree within the round trip.
    assert before - dt.timedelta(seconds=1) <= now <= after + dt.timedelta(seconds=1)
    offset = database.clock_offset(handle.engine)
    if handle.engine.dialect.name == "postgresql":
        assert offset is not None and abs(offset) < 1
    else:
        assert offset is None


def test_the_check_runs_on_every_node_on_postgresql_and_not_at_all_on_sqlite(
    handle: database.Database, settings: Settings
) -> None:
    runner = Runner(settings, handle)
    watch = clock.register_tasks(runner, handle)
    if handle.engine.dialect.name != "postgresql":
        assert watch is None and "clock-check" not in runner.tasks
        return
    task = runner.tasks["clock-check"]
    assert not task.leader_only and task.first_delay == 0
    assert watch is not None and watch.check() is not None


def test_a_clock_off_by_five_seconds_or_more_is_reported_once_then_its_return(
    handle: database.Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    offsets = iter([0.01, 61.0, 60.5, -7.0, 0.02, 0.01])
    monkeypatch.setattr(clock, "clock_offset", lambda _engine: next(offsets))
    watch = clock.ClockWatch(handle)
    caplog.set_level(logging.INFO, logger="portail.clock")
    seen = []
    for _ in range(6):
        watch.check()
        seen.append([r.getMessage() for r in caplog.records])
        caplog.clear()
    assert seen[0] == []
    assert len(seen[1]) == 1 and "+61.0 s" in seen[1][0] and "synchronisez-la (NTP)" in seen[1][0]
    assert seen[2] == [] and seen[3] == []  # still off (either way): said once
    assert len(seen[4]) == 1 and "de nouveau juste" in seen[4][0] and "right again" in seen[4][0]
    assert seen[5] == []
    assert watch.offset == 0.01
