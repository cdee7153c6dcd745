"""``Database.run_autocommit``: on PostgreSQL each statement of the work is its own transaction (no
BEGIN/COMMIT round trips: userinfo, introspection, client credentials); every other unit of work
stays one transaction, even on a connection an autocommit unit used before."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from portail.config import Settings
from portail.db import Database, database_threads
from tests.conftest import make_settings

TXID = sa.text("SELECT txid_current()")


def _two_transaction_ids(db: Session) -> tuple[int, int]:
    first = db.connection().execute(TXID).scalar_one()
    second = db.connection().execute(TXID).scalar_one()
    return int(first), int(second)


def test_autocommit_work_runs_each_statement_in_its_own_transaction_on_postgresql(settings: Settings) -> None:
    database = Database(settings)
    try:
        if database.engine.dialect.name != "postgresql":
            # SQLite: run_autocommit is run_short (the driver begins only at the first write).
            assert asyncio.run(
                database.run_autocommit(lambda db: db.connection().execute(sa.text("SELECT 1")).scalar())
            )
            return
        first, second = asyncio.run(database.run_autocommit(_two_transaction_ids))
        assert first != second
        # Ordinary units of work are still one transaction each, whichever pooled connection they get.
        for _ in range(3):
            same_first, same_second = database.call(_two_transaction_ids)
            assert same_first == same_second
    finally:
        database.dispose()


def _thread_name(db: Session) -> str:
    db.connection().execute(sa.text("SELECT 1"))
    return threading.current_thread().name


def test_slow_work_filling_every_database_thread_does_not_hold_up_the_protocol_endpoints(
    tmp_path: Path, postgres_url: str
) -> None:
    """On PostgreSQL ``run_short`` and ``run_autocommit`` have threads of their own: pages or jobs
    holding every ordinary database thread (here in ``pg_sleep``) do not delay a token request."""
    settings = make_settings(tmp_path, postgres_url)
    database = Database(settings)

    def slow(db: Session) -> None:
        db.connection().execute(sa.text("SELECT pg_sleep(3)"))

    async def scenario() -> tuple[list[str], bool]:
        slow_work = [asyncio.ensure_future(database.run(slow)) for _ in range(database_threads(settings))]
        await asyncio.sleep(0.3)  # every ordinary thread is now asleep in PostgreSQL
        names = [
            await asyncio.wait_for(database.run_short(_thread_name), 2.0),
            await asyncio.wait_for(database.run_autocommit(_thread_name), 2.0),
        ]
        still_sleeping = not any(task.done() for task in slow_work)
        await asyncio.gather(*slow_work)
        return names, still_sleeping

    try:
        names, still_sleeping = asyncio.run(scenario())
        assert still_sleeping  # the short work was answered while the slow work held every thread
        assert all(name.startswith("portail-db-short") for name in names)
    finally:
        database.dispose()


def test_short_work_runs_on_the_event_loops_thread_on_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    database = Database(make_settings(tmp_path, sqlite_url))
    try:
        names = asyncio.run(database.run_short(_thread_name)), asyncio.run(database.run_autocommit(_thread_name))
        assert names == (threading.current_thread().name,) * 2
    finally:
        database.dispose()
