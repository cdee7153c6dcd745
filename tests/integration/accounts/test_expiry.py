"""The expired-session sweep (``accounts/expiry.py``) on SQLite and PostgreSQL: it ends idle and too-old
sessions and only those, batch after batch in one pass, and reads two index ranges rather than the
whole ``login_session`` table (every session ever opened stays in it)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlmodel import Session, select

from portail import db as database
from portail.accounts import expiry, sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from tests.conftest import create_member
from tests.query_plans import plan, scans_whole_table


def _open(db: database.Database, member: Member, *, idle_minutes: int = 0, age_hours: int = 0) -> str:
    with db.session() as s:
        _token, row = sessions.open_session(s, member)
        now = database.utcnow()
        row.last_seen_at = now - dt.timedelta(minutes=idle_minutes)
        row.created_at = now - dt.timedelta(hours=age_hours)
        s.add(row)
        return row.sid


def _ended(db: database.Database) -> dict[str, str]:
    with db.session() as s:
        return {r.sid: r.end_reason for r in s.exec(select(LoginSession)) if r.ended_at is not None}


@pytest.fixture
def handle(settings: Settings) -> database.Database:
    db = database.Database(settings)
    yield db  # type: ignore[misc]
    db.dispose()


def test_the_sweep_ends_idle_and_too_old_sessions_only(handle: database.Database, settings: Settings) -> None:
    alice = create_member(settings)
    idle = _open(handle, alice, idle_minutes=settings.session_idle_minutes + 1)
    old = _open(handle, alice, age_hours=settings.session_absolute_hours + 1)
    both = _open(
        handle, alice, idle_minutes=settings.session_idle_minutes + 5, age_hours=settings.session_absolute_hours + 5
    )
    live = _open(handle, alice, idle_minutes=1, age_hours=1)
    assert asyncio.run(expiry.sweep(handle, settings)()) == 3
    assert _ended(handle) == {idle: "expired", old: "expired", both: "expired"}
    assert live not in _ended(handle)
    assert asyncio.run(expiry.sweep(handle, settings)()) == 0  # nothing ended twice


def test_one_pass_works_through_a_backlog_batch_after_batch(
    handle: database.Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry, "BATCH", 2)
    alice = create_member(settings)
    stale = [_open(handle, alice, idle_minutes=settings.session_idle_minutes + 1 + i) for i in range(5)]
    assert asyncio.run(expiry.sweep(handle, settings)()) == 5
    assert sorted(_ended(handle)) == sorted(stale)


def test_each_query_of_the_sweep_reads_its_index(handle: database.Database, settings: Settings) -> None:
    idle_query, old_query = expiry.expired_sessions_queries(settings, database.utcnow(), 200)

    def plans(db: Session) -> tuple[str, str]:
        return plan(db, idle_query), plan(db, old_query)

    idle_plan, old_plan = handle.call(plans)
    assert not scans_whole_table(idle_plan, "login_session") and not scans_whole_table(old_plan, "login_session")
    if settings.database_url.startswith("sqlite"):
        assert "ix_login_session_live_last_seen" in idle_plan and "ix_login_session_live_created" in old_plan
    else:  # on an empty test table PostgreSQL may take either (ended_at, …) index: both cost the same
        assert "ix_login_session_live_" in idle_plan and "ix_login_session_live_" in old_plan
