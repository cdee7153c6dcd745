"""Digests and retention at scale: digests walk due members by keyset in batches, each batch
committed before its mails go out (resumable, never doubled); the purge deletes in chunks, each
starting where the previous one ended."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

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


NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
CUTOFF = NOW - dt.timedelta(days=90)


def _notifications(db: database.Database, received: list[dt.datetime]) -> None:
    """One notification per time of ``received``, in that order (ids do not follow the times), named
    ``n<index>``."""
    member_id = add_member(db).id or 0
    tool = add_instance(db, "praxis", "praxis", "https://praxis.example").id or 0
    rows = [
        {"member_id": member_id, "instance_id": tool, "external_id": f"n{n}", "title": "x", "received_at": at}
        for n, at in enumerate(received)
    ]
    with db.session() as session:
        inbox.deliver(session, rows)


def _left(db: database.Database) -> list[str]:
    with db.session() as session:
        return sorted(session.exec(select(Notification.external_id)).all(), key=lambda name: int(name[1:]))


@contextlib.contextmanager
def _deletes(db: database.Database) -> Iterator[list[str]]:
    """The DELETE statements sent while the block runs (on PostgreSQL, inside a ``WITH``)."""
    seen: list[str] = []

    def listener(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "DELETE FROM" in statement.upper():
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)


def test_the_purge_deletes_in_chunks_and_keeps_recent_notifications(settings: Settings) -> None:
    """On both databases: one DELETE statement per chunk, the oldest first, recent rows kept."""
    db = database.Database(settings)
    old, recent = NOW - dt.timedelta(days=100), NOW - dt.timedelta(days=1)
    _notifications(db, [old] * 7 + [recent] * 2)
    with _deletes(db) as deletes, db.session() as session:
        assert inbox.purge(session, 90, NOW, chunk=3) == 7
    assert len(deletes) == 3  # 3 + 3 + 1
    assert _left(db) == ["n7", "n8"]
    db.dispose()


def test_the_purge_deletes_everything_older_than_the_retention_over_many_chunks(settings: Settings) -> None:
    """Times spread on both sides of the cutoff, inserted out of order: every row received before the
    cutoff is deleted, none at or after it, whatever the chunk size."""
    steps = [(n * 37) % 100 for n in range(100)]  # 0..99, shuffled
    received = [CUTOFF + dt.timedelta(hours=step - 60) for step in steps]  # 60 before the cutoff, 40 at or after
    db = database.Database(settings)
    _notifications(db, received)
    with _deletes(db) as deletes, db.session() as session:
        assert inbox.purge(session, 90, NOW, chunk=7) == 60
    assert len(deletes) == 9  # 8 full chunks of 7 and one of 4
    assert _left(db) == [f"n{n}" for n, at in enumerate(received) if at >= CUTOFF]
    db.dispose()


def test_the_purge_takes_every_row_of_a_timestamp_split_across_chunks(settings: Settings) -> None:
    """Ties: groups of rows sharing one ``received_at`` that chunk boundaries cut through (the keyset
    is ``(received_at, id)``), a group larger than a chunk, and rows exactly at the cutoff (kept)."""
    first, second = CUTOFF - dt.timedelta(days=10), CUTOFF - dt.timedelta(seconds=1)
    received = [first] * 5 + [second] * 9 + [CUTOFF] * 3 + [first] * 2
    db = database.Database(settings)
    _notifications(db, received)
    with db.session() as session:
        assert inbox.purge(session, 90, NOW, chunk=4) == 16
    assert _left(db) == ["n14", "n15", "n16"]
    db.dispose()


def test_each_chunk_after_the_first_starts_where_the_previous_one_ended(settings: Settings) -> None:
    """PostgreSQL keeps a deleted row's index entry until the next vacuum: a chunk that started from
    the oldest entry again would walk all the rows already purged. Each chunk after the first starts
    after the last row of the previous one, by ``(received_at, id)`` (SQLite removes entries as it
    deletes and needs no bound)."""
    received = [CUTOFF - dt.timedelta(minutes=n) for n in range(1, 11)]
    db = database.Database(settings)
    _notifications(db, received)
    with _deletes(db) as deletes, db.session() as session:
        assert inbox.purge(session, 90, NOW, chunk=3) == 10
    assert len(deletes) == 4
    postgres = settings.database_url.startswith("postgresql")
    bounded = ["(notification.received_at, notification.id) >" in statement for statement in deletes]
    assert bounded == ([False, True, True, True] if postgres else [False] * 4)
    assert _left(db) == []
    db.dispose()


def test_a_purge_stopped_midway_is_finished_by_the_next_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is committed: a run that dies after two chunks leaves them deleted, and the next run
    (which starts from the oldest row left) deletes the rest and nothing newer."""
    received = [CUTOFF - dt.timedelta(minutes=1 + n % 4) for n in range(12)] + [CUTOFF + dt.timedelta(minutes=1)]
    db = database.Database(settings)
    _notifications(db, received)
    real, calls = inbox._purge_chunk, [0]

    def dying(*args: Any, **kwargs: Any) -> tuple[int, dt.datetime | None]:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("the node died")
        return real(*args, **kwargs)

    monkeypatch.setattr(inbox, "_purge_chunk", dying)
    with pytest.raises(RuntimeError), db.session() as session:
        inbox.purge(session, 90, NOW, chunk=5)
    assert len(_left(db)) == 3
    monkeypatch.setattr(inbox, "_purge_chunk", real)
    with db.session() as session:
        assert inbox.purge(session, 90, NOW, chunk=5) == 2
    assert _left(db) == ["n12"]
    db.dispose()
