"""A member's inbox: idempotent delivery, listing and filters, read/dismiss, preferences, badge, purge.

Every notification enters through ``deliver`` (push API and pulled sources alike), which inserts
with ``ON CONFLICT (instance_id, external_id) DO NOTHING`` and returns only the rows really inserted,
so a repeated delivery is a no-op on every database. Queries here use the member's indexes
(``ix_notification_member_created``, ``ix_notification_member_unread``): costs do not grow with the
number of members.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import any_, func, or_, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete, select

from portail.accounts.models import Member
from portail.db import MAX_ROW_ID, utcnow
from portail.federation import audience
from portail.federation.models import Instance
from portail.notifications.models import DIGESTS, Notification, NotificationPreference, SourceLink, SourceState
from portail.oidc.models import Consent

PAGE = 50


@dataclass(frozen=True)
class Delivered:
    id: int
    member_id: int
    external_id: str


def deliver(session: Session, rows: list[dict[str, Any]]) -> list[Delivered]:
    """Insert notifications, skipping those already known; returns the inserted ones."""
    if not rows:
        return []
    now = utcnow()
    values = [
        {
            "kind": "info",
            "body": "",
            "link": None,
            "origin": "push",
            "created_at": now,
            "received_at": now,
            "read_at": None,
            "dismissed_at": None,
            **row,
        }
        for row in rows
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Notification)
        .values(values)
        .on_conflict_do_nothing(index_elements=["instance_id", "external_id"])
        .returning(col(Notification.id), col(Notification.member_id), col(Notification.external_id))
    )
    return [Delivered(int(r[0]), int(r[1]), str(r[2])) for r in session.execute(statement).all()]


@dataclass(frozen=True)
class Filters:
    instance_id: int | None = None
    kind: str | None = None
    unread_only: bool = False
    before_id: int | None = None  # pagination: notifications older than this id
    limit: int = PAGE


def list_for(session: Session, member_id: int, filters: Filters) -> list[tuple[Notification, Instance]]:
    query = (
        select(Notification, Instance)
        .join(Instance, col(Instance.id) == col(Notification.instance_id))
        .where(Notification.member_id == member_id, col(Notification.dismissed_at).is_(None))
    )
    if filters.instance_id is not None:
        query = query.where(Notification.instance_id == filters.instance_id)
    if filters.kind:
        query = query.where(Notification.kind == filters.kind)
    if filters.unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    if filters.before_id is not None:
        query = query.where(col(Notification.id) < filters.before_id)
    query = query.order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
    return [(n, i) for n, i in session.exec(query.limit(max(1, min(filters.limit, 200)))).all()]


def unread_count(session: Session, member_id: int) -> int:
    query = select(func.count()).where(
        Notification.member_id == member_id,
        col(Notification.read_at).is_(None),
        col(Notification.dismissed_at).is_(None),
    )
    return int(session.exec(query).one())


def kinds_for(session: Session, member_id: int) -> list[str]:
    query = select(Notification.kind).where(Notification.member_id == member_id).distinct().limit(50)
    return sorted(session.exec(query).all())


def get(session: Session, member_id: int, notification_id: int) -> Notification | None:
    row = session.get(Notification, notification_id)
    return row if row is not None and row.member_id == member_id else None


def mark_read(session: Session, member_id: int, notification_id: int) -> bool:
    row = get(session, member_id, notification_id)
    if row is None:
        return False
    if row.read_at is None:
        row.read_at = utcnow()
        session.add(row)
    return True


def mark_all_read(session: Session, member_id: int, instance_id: int | None = None) -> int:
    statement = update(Notification).where(
        col(Notification.member_id) == member_id, col(Notification.read_at).is_(None)
    )
    if instance_id is not None:
        statement = statement.where(col(Notification.instance_id) == instance_id)
    result = session.execute(statement.values(read_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def dismiss(session: Session, member_id: int, notification_id: int) -> tuple[Notification, Instance] | None:
    """Dismiss locally; returns the row and its instance so the caller can propagate to the source."""
    row = get(session, member_id, notification_id)
    if row is None:
        return None
    now = utcnow()
    row.dismissed_at = row.dismissed_at or now
    row.read_at = row.read_at or now
    session.add(row)
    instance = session.get(Instance, row.instance_id)
    assert instance is not None
    return row, instance


# ---------------------------------------------------------------- preferences


def preferences(session: Session, member_id: int) -> dict[int, NotificationPreference]:
    rows = session.exec(select(NotificationPreference).where(NotificationPreference.member_id == member_id))
    return {row.instance_id: row for row in rows}


def set_preference(session: Session, member_id: int, instance_id: int, *, enabled: bool, digest: str) -> bool:
    """Record the member's choice for this instance; False (nothing recorded) when there is no such instance."""
    if digest not in DIGESTS:
        raise ValueError(digest)
    if not 0 < instance_id <= MAX_ROW_ID or session.get(Instance, instance_id) is None:
        return False
    row = session.exec(
        select(NotificationPreference).where(
            NotificationPreference.member_id == member_id, NotificationPreference.instance_id == instance_id
        )
    ).first() or NotificationPreference(member_id=member_id, instance_id=instance_id)
    row.enabled = enabled
    row.digest = digest
    row.updated_at = utcnow()
    session.add(row)
    return True


def muted(session: Session, member_ids: set[int], instance_id: int) -> set[int]:
    """Those of ``member_ids`` who turned this instance off."""
    if not member_ids:
        return set()
    rows = session.exec(
        select(NotificationPreference.member_id).where(
            NotificationPreference.instance_id == instance_id,
            col(NotificationPreference.member_id).in_(member_ids),
            NotificationPreference.enabled == False,  # noqa: E712
        )
    )
    return set(rows.all())


def instance_choices(session: Session, member_id: int) -> list[Instance]:
    """The member's tools, by name: the active instances the portal shows them (central ones and
    those of their organizations), plus those they already use — logged in to (a consent to the
    instance's client), linked, set a preference for, or received notifications from."""
    member = session.get(Member, member_id)
    if member is None:
        return []
    chosen = {instance.id: instance for instance in audience.visible_instances(session, member)}
    used = (
        select(Instance)
        .where(
            Instance.status == "active",
            or_(
                col(Instance.id).in_(
                    select(NotificationPreference.instance_id).where(NotificationPreference.member_id == member_id)
                ),
                col(Instance.id).in_(select(SourceLink.instance_id).where(SourceLink.member_id == member_id)),
                col(Instance.id).in_(
                    select(Notification.instance_id).where(Notification.member_id == member_id).distinct()
                ),
                col(Instance.client_id).in_(
                    select(Consent.client_id).where(Consent.member_id == member_id, col(Consent.withdrawn_at).is_(None))
                ),
            ),
        )
        .limit(500)
    )
    chosen.update({instance.id: instance for instance in session.exec(used)})
    return sorted(chosen.values(), key=lambda instance: instance.name.casefold())


def source_statuses(session: Session, member_id: int) -> list[tuple[Instance, SourceState]]:
    """The member's pulled sources whose last pull failed (the aggregator writes them)."""
    query = (
        select(Instance, SourceState)
        .join(SourceState, col(SourceState.instance_id) == col(Instance.id))
        .where(
            col(SourceState.member_id) == member_id,
            col(SourceState.status).in_(("unreachable", "error", "unauthorized")),
        )
    )
    return [(i, s) for i, s in session.exec(query.limit(100)).all()]


# ---------------------------------------------------------------- retention


PURGE_CHUNK = 5000


def purge(session: Session, retention_days: int, now: dt.datetime | None = None, *, chunk: int = PURGE_CHUNK) -> int:
    """Delete notifications received more than ``retention_days`` ago, ``chunk`` rows per transaction
    (the oldest first, through the ``(received_at, id)`` index): no long transaction or lock, and a
    purge stopped midway resumes where it was on its next run.

    On PostgreSQL each chunk starts after the last row of the previous one (keyset: ``(received_at,
    id) >`` that row's), so it does not walk again the index entries of the rows already deleted,
    which stay in the index until the next vacuum: every chunk costs the same however large the
    table, however far the purge has gone and however many rows share one ``received_at`` (a batch
    delivered at once does). SQLite removes index entries as it deletes and needs no bound. The
    bound lives only in the run: a new run (after a crash, say) starts from the oldest row left.
    """
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    removed, after = 0, None
    while True:
        count, last = _purge_chunk(session, cutoff, after, chunk)
        session.commit()
        removed += count
        if count < chunk:
            return removed
        after = last


def _purge_chunk(
    session: Session, cutoff: dt.datetime, after: tuple[dt.datetime, int] | None, chunk: int
) -> tuple[int, tuple[dt.datetime, int] | None]:
    """One chunk: delete the ``chunk`` oldest rows received before ``cutoff`` (and after the row
    ``after``, as ``(received_at, id)``) in one statement; returns how many were deleted and, on
    PostgreSQL, the last of them (the next chunk's bound).

    The ids are chosen in the database. On PostgreSQL they are gathered into an array first
    (``id = ANY(ARRAY(SELECT … LIMIT n))``): as ``id IN (SELECT … LIMIT n)`` the planner may join the
    whole table against the chunk, which costs as much as the table. The DELETE is a CTE whose
    ``RETURNING`` is counted and reduced to its last row in the database, so no other row travels back."""
    received, row_id = col(Notification.received_at), col(Notification.id)
    window = [received < cutoff]
    if after is not None:
        window.append(tuple_(received, row_id) > tuple_(*after))
    oldest = select(row_id).where(*window).order_by(received, row_id).limit(chunk)
    if session.get_bind().dialect.name == "postgresql":
        gone = delete(Notification).where(row_id == any_(func.array(oldest.scalar_subquery())))
        rows = gone.returning(received, row_id).cte("gone")
        last = (
            select(func.count().over(), rows.c.received_at, rows.c.id)
            .order_by(rows.c.received_at.desc(), rows.c.id.desc())
            .limit(1)
        )
        found = session.execute(last).first()
        return (int(found[0]), (found[1], int(found[2]))) if found else (0, None)
    # SQLite removes a row's index entries as it deletes the row: the oldest row left is the first
    # entry of the index, so there is nothing to skip and no bound to carry.
    result = session.execute(delete(Notification).where(row_id.in_(oldest.scalar_subquery())))
    return int(getattr(result, "rowcount", 0) or 0), None
