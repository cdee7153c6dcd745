"""Erasing one member from every table: deleted, or kept without anything that points back to them.

The rule is generic so that a table added later by any package is covered without editing this
module: starting from the ``member`` row, every row that refers to it through a foreign key is
deleted, after the rows that refer to *those* (refresh tokens of the member's grants, …). Columns
that refer to a member by a conventional name without a foreign key are handled too: ``member_id``
rows are deleted, and authorship columns (``actor_id``, ``*_by``) are emptied. Login-throttle
counters keyed by the address, and any ``*email*`` column holding the member's address, are cleared.

Kept on purpose, with the link to the member emptied (Law 25 lets an organization keep what it must,
and a deletion must itself leave a trace): the consent ledger (``consent_event``: what was granted
or withdrawn to which tool, when, under which policy version — ``member_id`` and ``detail``
emptied), the audit log (``audit_event``: ``member_id``/``actor_id``, ``reason``, ``ip_address``
emptied), and the deletion request itself (reference and dates).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from portail.accounts.models import Member

AUTHOR_COLUMNS = {"actor_id", "approved_by", "created_by", "decided_by", "invited_by", "published_by", "recorded_by",
                  "requested_by", "updated_by"}  # fmt: skip
# Tables whose rows survive the purge; their columns referring to the member are emptied instead.
KEPT_TABLES = {"consent_event", "audit_event", "deletion_request"}
MAX_DEPTH = 6


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def is_text(column: sa.Column[Any]) -> bool:
    """A string column, including SQLModel's ``AutoString`` (a type decorator over ``String``)."""
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, sa.String)


def _has_fk(column: sa.Column[Any]) -> bool:
    return bool(column.foreign_keys)


def _delete_cascading(conn: sa.Connection, table: sa.Table, condition: Any, depth: int = 0) -> int:
    """Delete ``table`` rows matching ``condition`` after every row that refers to them."""
    if depth > MAX_DEPTH:
        raise RuntimeError(f"foreign keys nested too deep under {table.name}")
    for child in SQLModel.metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is not table:
                continue
            column = fk.parent
            refers = column.in_(sa.select(fk.column).where(condition))
            if child.name in KEPT_TABLES or (column.name in AUTHOR_COLUMNS and column.nullable):
                conn.execute(sa.update(child).where(refers).values({column.name: None}))
            else:
                _delete_cascading(conn, child, refers, depth + 1)
    return int(conn.execute(sa.delete(table).where(condition)).rowcount or 0)


def _anonymize_kept(conn: sa.Connection, member_id: int) -> None:
    events = _table("consent_event")
    conn.execute(sa.update(events).where(events.c.member_id == member_id).values(member_id=None, detail=""))
    audit = _table("audit_event")
    conn.execute(
        sa.update(audit)
        .where(audit.c.subject_type == "member", audit.c.subject_id == str(member_id))
        .values(subject_id="")
    )
    conn.execute(
        sa.update(audit).where(audit.c.member_id == member_id).values(member_id=None, reason="", ip_address="")
    )
    conn.execute(sa.update(audit).where(audit.c.actor_id == member_id).values(actor_id=None, ip_address=""))


def _unlinked_references(conn: sa.Connection, member_id: int) -> None:
    """Columns naming a member without a foreign key: ``member_id`` rows go, authorship is emptied."""
    for table in SQLModel.metadata.sorted_tables:
        if table.name in KEPT_TABLES or table.name == "member":
            continue
        for column in table.columns:
            if _has_fk(column):
                continue
            if column.name == "member_id":
                _delete_cascading(conn, table, column == member_id)
            elif column.name in AUTHOR_COLUMNS and column.nullable:
                conn.execute(sa.update(table).where(column == member_id).values({column.name: None}))


def _addresses(conn: sa.Connection, email: str, email_key: str) -> None:
    throttle = _table("login_throttle")
    conn.execute(sa.delete(throttle).where(throttle.c.key == f"account:{email_key[:380]}"))
    for table in SQLModel.metadata.sorted_tables:
        if table.name == "member":  # the row is gone; other members' addresses are not this one
            continue
        for column in table.columns:
            if "email" not in column.name or not is_text(column):
                continue
            blank = None if column.nullable else ""
            conn.execute(sa.update(table).where(sa.func.lower(column) == email.lower()).values({column.name: blank}))


def erase(db: Session, member_id: int) -> None:
    """Delete or anonymize everything about one member, in the caller's transaction."""
    member = db.get(Member, member_id)
    if member is None:
        return
    email, email_key = member.email, member.email_key
    db.expunge(member)
    conn = db.connection()
    _anonymize_kept(conn, member_id)
    _unlinked_references(conn, member_id)
    members = _table("member")
    _delete_cascading(conn, members, members.c.id == member_id)
    _addresses(conn, email, email_key)
