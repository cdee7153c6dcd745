"""The access log counts per day as members live it (Portail's time zone), not per UTC day."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from portail import db as database
from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc import usage
from portail.oidc.models import DataAccess, OAuthClient
from tests.conftest import create_member


def _member_and_tool(db: database.Database, settings: Settings) -> Member:
    """Alice, and the tool ``outil`` whose accesses are counted."""
    member = create_member(settings)
    with db.session() as session:
        session.add(OAuthClient(client_id="outil", name="Outil", redirect_uris=[]))
    return member


def test_an_evening_access_in_quebec_counts_on_that_local_day(
    db: database.Database, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = _member_and_tool(db, unit_settings)
    evening = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)  # 22:00 on Nov 21 in Montréal
    monkeypatch.setattr(usage, "utcnow", lambda: evening)
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
    with db.session() as session:
        row = session.exec(select(DataAccess)).one()
    assert (row.day, row.count) == (dt.date(2026, 11, 21), 2)


def _pending_db(db: database.Database) -> usage.AccessCounts:
    return usage.install(db)


def _rows(db: database.Database) -> list[DataAccess]:
    with db.session() as session:
        return list(session.exec(select(DataAccess).order_by(DataAccess.kind)))


def test_buffered_counts_are_written_by_a_flush_and_added_to_the_existing_row(
    db: database.Database, unit_settings: Settings
) -> None:
    member = _member_and_tool(db, unit_settings)
    counts = _pending_db(db)
    for scopes in ("openid", "openid email", "openid email"):
        with db.session() as session:
            usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", scopes)
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "token", "openid")
    assert _rows(db) == [] and counts.pending() == 2  # nothing written yet: one row per kind pending
    assert counts.flush(db) == 2
    token, userinfo = _rows(db)
    assert (token.kind, token.count, userinfo.kind, userinfo.count) == ("token", 1, "userinfo", 3)
    assert userinfo.scopes == "openid email" and userinfo.first_at <= userinfo.last_at
    first_at = userinfo.first_at
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
    assert counts.flush(db) == 1 and counts.flush(db) == 0
    after = next(r for r in _rows(db) if r.kind == "userinfo")
    assert (after.count, after.scopes, after.first_at) == (4, "openid", first_at)
    assert after.last_at > userinfo.last_at


def test_a_late_flush_from_another_node_keeps_the_earliest_first_and_latest_last_access(
    db: database.Database, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = _member_and_tool(db, unit_settings)
    node_a, node_b = usage.AccessCounts(), usage.AccessCounts()
    noon = dt.datetime(2026, 11, 21, 17, 0, tzinfo=dt.UTC)
    day = dt.date(2026, 11, 21)
    node_a.add((member.id or 0, "outil", "userinfo", day), noon, "openid email")
    node_b.add((member.id or 0, "outil", "userinfo", day), noon - dt.timedelta(minutes=5), "openid")
    node_a.flush(db)
    node_b.flush(db)  # older accesses, written later
    (row,) = _rows(db)
    assert row.count == 2
    assert row.first_at.replace(tzinfo=dt.UTC) == noon - dt.timedelta(minutes=5)
    assert row.last_at.replace(tzinfo=dt.UTC) == noon and row.scopes == "openid email"


def test_counts_of_a_member_purged_before_the_flush_are_dropped(db: database.Database, unit_settings: Settings) -> None:
    kept = _member_and_tool(db, unit_settings)
    gone = create_member(unit_settings, email="bob@example.org", name="Bob")
    counts = _pending_db(db)
    for member in (kept, gone):
        with db.session() as session:
            usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
    with db.session() as session:
        session.delete(session.get(Member, gone.id))
    assert counts.flush(db) == 1
    assert [(r.member_id, r.count) for r in _rows(db)] == [(kept.id, 1)]
    assert counts.pending() == 0


def test_a_failed_flush_keeps_its_counts_for_the_next_one(db: database.Database, unit_settings: Settings) -> None:
    member = _member_and_tool(db, unit_settings)
    counts = _pending_db(db)
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
    # The database refuses the write (here: the table is locked away from this connection by a rename).
    with db.session() as session:
        session.connection().exec_driver_sql("ALTER TABLE data_access RENAME TO data_access_away")
    with pytest.raises(OperationalError):
        counts.flush(db)
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
        session.connection().exec_driver_sql("ALTER TABLE data_access_away RENAME TO data_access")
    assert counts.pending() == 1
    assert counts.flush(db) == 1
    assert [r.count for r in _rows(db)] == [2]


def test_counts_written_by_a_reader_that_then_fails_go_back_to_the_buffer(
    db: database.Database, unit_settings: Settings
) -> None:
    """``write_pending`` writes in the reader's transaction (a page, the export, a purge): if that
    transaction rolls back, the counts must not be lost with it, nor be written twice if it commits."""
    member = _member_and_tool(db, unit_settings)
    counts = _pending_db(db)
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
    with pytest.raises(RuntimeError), db.session() as session:
        assert usage.write_pending(session) == 1
        raise RuntimeError("la page échoue après avoir lu / the page fails after reading")
    assert _rows(db) == [] and counts.pending() == 1
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid email")
        assert usage.write_pending(session) == 1
    (row,) = _rows(db)
    assert (row.count, row.scopes) == (2, "openid email")
    assert counts.pending() == 0 and counts.flush(db) == 0
