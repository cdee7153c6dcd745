"""The expired-session sweep: end the login sessions that expired while nobody used them.

A session past its idle time (``session_idle_minutes``) or its absolute lifetime
(``session_absolute_hours``) is ended by the next request that presents it (``sessions.load``).
One that nobody presents again would stay live for ever, and the tools it logged in to would never
hear of its end: the sweep, a background task of the leading process (``register_tasks``, every
minute), ends them with reason ``expired``, so the session-end hooks (back-channel logout) run.

At scale the live sessions are a small part of ``login_session`` (every session ever opened stays,
ended): the sweep reads two index ranges, ``(ended_at, last_seen_at)`` and ``(ended_at,
created_at)``, each ordered and limited, rather than one query with an ``OR`` that the planner can
only answer by reading the whole table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from portail.accounts import sessions
from portail.accounts.models import LoginSession
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database, utcnow

SWEEP_SECONDS = 60.0
BATCH = 200


def expired_sessions_queries(settings: Settings, now: dt.datetime, limit: int) -> list[SelectOfScalar[int | None]]:
    """Live sessions idle too long, and live sessions too old: two queries, each served by its own
    index (``ix_login_session_live_last_seen``, ``ix_login_session_live_created``)."""
    idle_before = now - dt.timedelta(minutes=settings.session_idle_minutes)
    born_before = now - dt.timedelta(hours=settings.session_absolute_hours)
    live = col(LoginSession.ended_at).is_(None)
    return [
        select(col(LoginSession.id))
        .where(live, col(LoginSession.last_seen_at) < idle_before)
        .order_by(col(LoginSession.last_seen_at))
        .limit(limit),
        select(col(LoginSession.id))
        .where(live, col(LoginSession.created_at) < born_before)
        .order_by(col(LoginSession.created_at))
        .limit(limit),
    ]


def end_expired_sessions(db: Session, settings: Settings, now: dt.datetime, limit: int = BATCH) -> int:
    """End up to ``limit`` sessions that expired without a request noticing (idle or absolute
    lifetime), so that their tools are told too. Each row is claimed by a conditional UPDATE
    (``end_reason`` is the marker, overwritten by ``end_sessions`` in the same transaction): when
    several processes sweep at once, one ends it."""
    candidates: list[int] = []
    for query in expired_sessions_queries(settings, now, limit):
        candidates.extend(row_id for row_id in db.exec(query).all() if row_id is not None)
    claimed = []
    for row_id in sorted(set(candidates))[:limit]:
        result = db.execute(
            update(LoginSession)
            .where(
                col(LoginSession.id) == row_id, col(LoginSession.ended_at).is_(None), col(LoginSession.end_reason) == ""
            )
            .values(end_reason="expiring")
        )
        if getattr(result, "rowcount", 0) == 1:
            row = db.get(LoginSession, row_id)
            if row is not None:
                db.refresh(row)
                claimed.append(row)
    return len(sessions.end_sessions(db, claimed, "expired")) if claimed else 0


def sweep(db: Database, settings: Settings) -> Callable[[], Awaitable[int]]:
    """One pass: batches of ``BATCH`` until a batch comes back short (each batch its own transaction,
    so a big backlog after a long outage neither holds one huge transaction nor waits a minute per
    batch)."""

    async def run() -> int:
        total = 0
        while True:
            ended = await db.run(end_expired_sessions, settings, utcnow())
            total += ended
            if ended < BATCH:
                return total

    return run


def register_tasks(runner: Runner, db: Database, settings: Settings) -> None:
    runner.add(Task("session-expiry", sweep(db, settings), every=SWEEP_SECONDS, first_delay=5.0))
