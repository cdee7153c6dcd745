"""``Database.run_autocommit``: on PostgreSQL each statement of the work is its own transaction (no
BEGIN/COMMIT round trips: userinfo, introspection, client credentials); every other unit of work
stays one transaction, even on a connection an autocommit unit used before."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlmodel import Session

from portail.config import Settings
from portail.db import Database

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
