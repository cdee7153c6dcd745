"""The session cookie resolved in Core (``sessions.resolve``, ``portail.core_rows``): the session and
member it returns behave as ORM-loaded rows would: touching, ending, and a later unit of work
changing them update their rows, never insert copies."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select

from portail.accounts import members, sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.db import Database, utcnow


def _opened(db: Database) -> str:
    with db.session() as s:
        member = members.create_member(s, email="alice@example.org", name="Alice", password_hash="x", verified=True)
        token, _row = sessions.open_session(s, member)
    return token


def test_a_resolved_session_and_member_changed_later_update_their_rows(db: Database, unit_settings: Settings) -> None:
    token = _opened(db)
    found = db.call(sessions.resolve, token, unit_settings)
    assert found is not None
    row, member = found
    assert (member.email, row.member_id) == ("alice@example.org", member.id)

    def rename(s: object) -> None:  # a page saving the member it got from the cookie
        member.name = "Alice Tremblay"
        row.user_agent = "Firefox"
        s.add(member)  # type: ignore[attr-defined]
        s.add(row)  # type: ignore[attr-defined]

    db.call(rename)
    with db.session() as s:
        assert [m.name for m in s.exec(select(Member))] == ["Alice Tremblay"]
        assert [r.user_agent for r in s.exec(select(LoginSession))] == ["Firefox"]


def test_an_idle_session_is_touched_and_an_expired_one_ended_in_place(db: Database, unit_settings: Settings) -> None:
    token = _opened(db)
    long_ago = utcnow() - dt.timedelta(minutes=5)
    with db.session() as s:
        stored = s.exec(select(LoginSession)).one()
        stored.last_seen_at = long_ago
        s.add(stored)
    assert db.call(sessions.resolve, token, unit_settings) is not None
    with db.session() as s:
        touched = s.exec(select(LoginSession)).one()
    assert touched.last_seen_at.replace(tzinfo=None) > long_ago.replace(tzinfo=None)

    with db.session() as s:
        stored = s.exec(select(LoginSession)).one()
        stored.last_seen_at = utcnow() - dt.timedelta(minutes=unit_settings.session_idle_minutes + 1)
        s.add(stored)
    assert db.call(sessions.resolve, token, unit_settings) is None
    with db.session() as s:
        (ended,) = s.exec(select(LoginSession)).all()
    assert ended.ended_at is not None and ended.end_reason == "expired"
