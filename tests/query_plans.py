"""The plan a database chooses for a statement, so that a test can say "this uses that index".

On PostgreSQL, sequential scans are discouraged for the statement (``enable_seqscan = off``): test
tables are tiny, and a planner that still reads the whole table then has no index it could use.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session


def plan(db: Session, statement: Any) -> str:
    connection = db.connection()
    sql = str(statement.compile(connection, compile_kwargs={"literal_binds": True}))
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        rows = connection.execute(sa.text("EXPLAIN " + sql)).all()
        connection.execute(sa.text("SET LOCAL enable_seqscan = on"))
        return "\n".join(str(row[0]) for row in rows)
    rows = connection.execute(sa.text("EXPLAIN QUERY PLAN " + sql)).all()
    return "\n".join(str(row[-1]) for row in rows)


def scans_whole_table(text: str, table: str) -> bool:
    """Does the plan read every row of ``table`` (a sequential scan, or SQLite's SCAN without index)?"""
    for line in text.splitlines():
        if f"Seq Scan on {table}" in line:
            return True
        if line.strip().startswith(f"SCAN {table}") and "INDEX" not in line:
            return True
    return False
