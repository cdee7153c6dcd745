"""Digests and retention at scale: digests walk due members by keyset in batches, each batch
committed before its mails go out (resumable, never doubled); the purge deletes in chunks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from portail import db as database
from portail import mail
from portail.config import Settings
from portail.db import utcnow
from portail.notifications import digests, inbox
from portail.notifications.models import Notification
from tests.conftest import outbox
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


def test_the_purge_deletes_in_chunks_and_keeps_recent_notifications(db: database.Database) -> None:
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
    with db.session() as session:
        assert inbox.purge(session, 90, chunk=3) == 7
    with db.session() as session:
        left = session.exec(select(Notification.external_id)).all()
    assert sorted(left) == ["r0", "r1"]
