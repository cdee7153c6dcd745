"""Single-statement upserts that SQLite and PostgreSQL both understand (``INSERT … ON CONFLICT``).

Hot paths (token issuance, userinfo) record usage with one statement instead of a read-then-write,
which also removes the race between two processes inserting the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel


def _insert(db: Session, model: type[SQLModel]) -> Any:
    table = model.__table__  # type: ignore[attr-defined]
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(db: Session, model: type[SQLModel], values: Mapping[str, Any]) -> bool:
    """Insert a row unless it would violate a unique constraint; True when inserted."""
    table = model.__table__  # type: ignore[attr-defined]
    key = next(iter(table.primary_key.columns))
    statement = _insert(db, model).values(**values).on_conflict_do_nothing().returning(key)
    # RETURNING, not rowcount: psycopg reports no reliable rowcount for ON CONFLICT DO NOTHING.
    return db.execute(statement).first() is not None  # type: ignore[call-overload,no-any-return]


def upsert(
    db: Session,
    model: type[SQLModel],
    values: Mapping[str, Any],
    conflict: Sequence[str],
    update: Mapping[str, Any | ColumnElement[Any]],
) -> None:
    """Insert a row, or update ``update`` on the existing one (``update`` may refer to the row's
    current columns, e.g. ``{"count": Model.count + 1}``)."""
    statement = _insert(db, model).values(**values)
    statement = statement.on_conflict_do_update(index_elements=list(conflict), set_=dict(update))
    db.execute(statement)  # type: ignore[call-overload]


_PREPARED: dict[tuple[str, str], Any] = {}


def prepared(db: Session, name: str, build: Callable[[Callable[[Any], Any]], Any]) -> Any:
    """A statement built once per dialect and reused with bind parameters (hot paths).

    ``build(insert)`` receives the dialect's ``insert`` construct (``ON CONFLICT`` support) and
    returns the statement, whose values are ``bindparam``s; execute it with a parameter dict."""
    dialect = db.get_bind().dialect.name
    statement = _PREPARED.get((name, dialect))
    if statement is None:
        statement = build(postgresql.insert if dialect == "postgresql" else sqlite.insert)
        _PREPARED[(name, dialect)] = statement
    return statement
