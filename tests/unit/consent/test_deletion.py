"""Deletion requests: grace period, one at a time, cancelled by logging in, the officer's queue."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from portail.accounts import members, sessions
from portail.accounts.extensions import AccountExtensions
from portail.accounts.models import LoginSession
from portail.config import Settings
from portail.consent import deletion, export, hooks
from portail.consent.errors import ConsentError
from portail.consent.models import DeletionRequest
from portail.db import Database, utcnow
from tests.conftest import mail_text, outbox


def _member(db: Database) -> int:
    with db.session() as session:
        member = members.create_member(session, email="a@example.org", name="Ana", password_hash="x", verified=True)
        sessions.open_session(session, member)
        return member.id or 0


def test_a_request_ends_every_session_and_sets_the_grace_period(db: Database, unit_settings: Settings) -> None:
    mid = _member(db)
    with db.session() as session:
        row = deletion.request_deletion(session, unit_settings, mid)
        assert row.due_at - row.requested_at == dt.timedelta(days=unit_settings.deletion_grace_days)
    with db.session() as session:
        [login] = session.exec(select(LoginSession).where(LoginSession.member_id == mid)).all()
        assert login.ended_at is not None and login.end_reason == "deletion-requested"
    [mail] = outbox(unit_settings)
    assert mail["To"] == "a@example.org" and row.due_at.date().isoformat() in mail_text(mail)


def test_a_second_request_is_refused_with_the_dates_of_the_first(db: Database, unit_settings: Settings) -> None:
    mid = _member(db)
    with db.session() as session:
        first = deletion.request_deletion(session, unit_settings, mid)
    with db.session() as session, pytest.raises(ConsentError) as caught:
        deletion.request_deletion(session, unit_settings, mid)
    assert caught.value.status == 409
    assert caught.value.params["due"] == first.due_at.date().isoformat()
    with db.session() as session:
        assert len(session.exec(select(DeletionRequest)).all()) == 1


def test_the_database_refuses_two_pending_requests_for_one_member(db: Database, unit_settings: Settings) -> None:
    mid = _member(db)
    with db.session() as session:
        deletion.request_deletion(session, unit_settings, mid)
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(DeletionRequest(member_id=mid, due_at=utcnow()))
        session.flush()


def test_logging_in_during_the_grace_period_cancels_the_request(db: Database, unit_settings: Settings) -> None:
    mid = _member(db)
    with db.session() as session:
        deletion.request_deletion(session, unit_settings, mid)
    hooks.install(AccountExtensions.attached_to(db), unit_settings, review_step=False)
    with db.session() as session:
        member = members.get_by_email(session, "a@example.org")
        assert member is not None
        sessions.open_session(session, member)
    with db.session() as session:
        [row] = session.exec(select(DeletionRequest)).all()
        assert (row.status, row.cancel_reason) == ("cancelled", "login")
        assert deletion.pending_for(session, mid) is None
    assert "Vous vous êtes connecté" in mail_text(outbox(unit_settings)[-1])
    with db.session() as session:  # and a new request is possible again
        deletion.request_deletion(session, unit_settings, mid)


def test_only_requests_past_their_grace_period_are_due(db: Database, unit_settings: Settings) -> None:
    mid = _member(db)
    with db.session() as session:
        row = deletion.request_deletion(session, unit_settings, mid)
        due_at = row.due_at
    with db.session() as session:
        assert deletion.due(session, due_at - dt.timedelta(seconds=1)) == []
        assert deletion.due(session, due_at) == [row.id]


def test_the_queue_lists_deletion_and_access_requests(db: Database, unit_settings: Settings) -> None:
    mid = _member(db)
    with db.session() as session:
        deletion.request_deletion(session, unit_settings, mid)
        export.request_export(session, mid)
    with db.session() as session:
        kinds = {(e.kind, e.status, e.member_email) for e in deletion.queue(session)}
    assert kinds == {("deletion", "pending", "a@example.org"), ("access", "pending", "a@example.org")}


def test_the_queue_reads_neither_archives_nor_more_rows_than_it_shows(db: Database) -> None:
    """The officer's page must not load each export's archive (megabytes) nor every member."""
    from sqlalchemy import event

    from portail.consent.models import DataExport

    mid = _member(db)
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with db.session() as session:
        for n in range(6):
            session.add(
                DataExport(member_id=mid, status="ready", requested_at=start + dt.timedelta(hours=2 * n), archive="x")
            )
            session.add(
                DeletionRequest(
                    member_id=None, status="purged", requested_at=start + dt.timedelta(hours=2 * n + 1), due_at=start
                )
            )
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with db.session() as session:
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", record)
        try:
            entries = deletion.queue(session, limit=4)
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert [(e.kind, e.requested_at.hour) for e in entries] == [
        ("deletion", 11),
        ("access", 10),
        ("deletion", 9),
        ("access", 8),
    ]
    assert [e.member_email for e in entries] == [None, "a@example.org", None, "a@example.org"]
    assert statements and not any("archive" in s for s in statements)
    assert not any("password_hash" in s for s in statements)  # only the e-mail addresses of members
