"""Digests and retention at scale: digests walk due members by keyset in batches, each batch
committed before its mails go out (resumable, never doubled); the purge deletes in chunks."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlmodel import select

from portail import db as database
from portail import mail
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.notifications import digests, inbox
from portail.notifications.models import Notification, NotificationPreference
from tests.conftest import mail_text, outbox
from tests.unit.notifications.conftest import add_instance, add_member


def _members_with_digests(db: database.Database, count: int) -> list[int]:
    tool = add_instance(db, "praxis", "praxis", "https://praxis.example").id or 0
    ids = []
    for n in range(count):
        member_id = add_member(db, f"d{n}@example.org").id or 0
        with db.session() as session:
            inbox.set_preference(session, member_id, tool, enabled=True, digest="daily")
            inbox.deliver(
                session, [{"member_id": member_id, "instance_id": tool, "external_id": f"n{n}", "title": f"Note {n}"}]
            )
        ids.append(member_id)
    return ids


def test_digests_are_sent_batch_by_batch_and_not_again(db: database.Database, unit_settings: Settings) -> None:
    _members_with_digests(db, 5)
    with db.session() as session:
        assert digests.send_due(session, unit_settings, "daily", batch=2) == 5
    with db.session() as session:
        assert digests.send_due(session, unit_settings, "daily", batch=2) == 0
    assert sorted(str(m["To"]) for m in outbox(unit_settings)) == [f"d{n}@example.org" for n in range(5)]


def test_a_digest_run_stopped_midway_resumes_without_doubling(
    db: database.Database, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _members_with_digests(db, 5)
    real = mail.deliver
    calls: list[str] = []

    def crashing(settings: Settings, message: object) -> None:
        calls.append(str(message["To"]))  # type: ignore[index]
        if len(calls) == 3:
            raise RuntimeError("the node died")
        real(settings, message)  # type: ignore[arg-type]

    monkeypatch.setattr(mail, "deliver", crashing)
    with pytest.raises(RuntimeError), db.session() as session:
        digests.send_due(session, unit_settings, "daily", batch=2)
    monkeypatch.setattr(mail, "deliver", real)
    with db.session() as session:
        assert digests.send_due(session, unit_settings, "daily", batch=2) == 1  # the last batch only
    mailed = [str(m["To"]) for m in outbox(unit_settings)]
    assert len(mailed) == len(set(mailed))  # nobody twice
    assert "d4@example.org" in mailed and "d0@example.org" in mailed


def test_a_batch_digest_holds_only_what_each_tool_brought_since_its_last_digest(
    db: database.Database, unit_settings: Settings
) -> None:
    """Batched composition (a few queries per batch) keeps each tool's own "since", the unread
    filter, and leaves out members who cannot receive mail while still marking them."""
    forum = add_instance(db, "forum", "discourse", "https://forum.example").id or 0
    wiki = add_instance(db, "wiki", "praxis", "https://wiki.example").id or 0
    alice = add_member(db, "alice@example.org").id or 0
    bob = add_member(db, "bob@example.org").id or 0
    now = utcnow()
    with db.session() as session:
        for member_id in (alice, bob):
            inbox.set_preference(session, member_id, forum, enabled=True, digest="daily")
            inbox.set_preference(session, member_id, wiki, enabled=True, digest="daily")
        wiki_pref = session.exec(
            select(NotificationPreference).where(
                NotificationPreference.member_id == alice, NotificationPreference.instance_id == wiki
            )
        ).one()
        wiki_pref.last_digest_at = now - dt.timedelta(hours=36)  # the forum's: never (a day back)
        session.add(wiki_pref)

        inbox.deliver(
            session,
            [
                {"member_id": alice, "instance_id": forum, "external_id": "f1", "title": "Forum new"},
                {"member_id": alice, "instance_id": wiki, "external_id": "w1", "title": "Wiki new"},
                {
                    "member_id": alice,
                    "instance_id": wiki,
                    "external_id": "w0",
                    "title": "Wiki old",
                    "received_at": now - dt.timedelta(hours=40),
                },
                {"member_id": alice, "instance_id": forum, "external_id": "f2", "title": "Forum read", "read_at": now},
                {
                    "member_id": alice,
                    "instance_id": forum,
                    "external_id": "f0",
                    "title": "Forum old",
                    "received_at": now - dt.timedelta(hours=30),
                },
                {"member_id": bob, "instance_id": forum, "external_id": "b1", "title": "Bob note"},
            ],
        )
        disabled = session.get(Member, bob)
        assert disabled is not None
        disabled.disabled_at = now
        session.add(disabled)
    with db.session() as session:
        assert digests.send_due(session, unit_settings, "daily", now=now + dt.timedelta(minutes=1)) == 1
    [message] = outbox(unit_settings)
    text = mail_text(message)
    assert str(message["To"]) == "alice@example.org"
    assert "Forum new" in text and "Wiki new" in text
    assert "Wiki old" not in text and "Forum read" not in text and "Forum old" not in text
    with db.session() as session:
        marks = session.exec(select(NotificationPreference.last_digest_at)).all()
        assert all(mark is not None and mark > now for mark in marks)  # Bob's too: not tried again


def test_the_purge_deletes_in_chunks_and_keeps_recent_notifications(settings: Settings) -> None:
    """On both databases: one DELETE statement per chunk, the oldest first, recent rows kept."""
    db = database.Database(settings)
    [member_id] = [add_member(db).id or 0]
    tool = add_instance(db, "praxis", "praxis", "https://praxis.example").id or 0
    old = utcnow() - dt.timedelta(days=100)
    with db.session() as session:
        inbox.deliver(
            session,
            [
                {"member_id": member_id, "instance_id": tool, "external_id": f"o{n}", "title": "x", "received_at": old}
                for n in range(7)
            ]
            + [{"member_id": member_id, "instance_id": tool, "external_id": f"r{n}", "title": "y"} for n in range(2)],
        )
    deletes: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.session() as session:
            assert inbox.purge(session, 90, chunk=3) == 7
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert len(deletes) == 3  # 3 + 3 + 1
    with db.session() as session:
        left = session.exec(select(Notification.external_id)).all()
    assert sorted(left) == ["r0", "r1"]
    db.dispose()
