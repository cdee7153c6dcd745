"""The export job and its link: built once, kept 24 hours, for the member who asked only."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlmodel import select

from portail.accounts import members
from portail.config import Settings
from portail.consent import export
from portail.consent.errors import ConsentError
from portail.consent.models import DataExport
from portail.db import Database, utcnow
from tests.conftest import link_in, outbox


def _members(db: Database) -> tuple[int, int]:
    with db.session() as session:
        a = members.create_member(session, email="a@example.org", name="Ana", password_hash="x", verified=True)
        b = members.create_member(session, email="b@example.org", name="Bob", password_hash="x", verified=True)
        return a.id or 0, b.id or 0


def _ready(db: Database, settings: Settings, member_id: int) -> int:
    with db.session() as session:
        export_id = export.request_export(session, member_id).id or 0
    assert export.run(db, settings, export_id)
    return export_id


def test_a_request_is_built_once_and_mailed(db: Database, unit_settings: Settings) -> None:
    a, _b = _members(db)
    with db.session() as session:
        first = export.request_export(session, a)
        again = export.request_export(session, a)  # still waiting: the same request
        assert first.id == again.id
    assert export.run(db, unit_settings, first.id or 0)
    assert not export.run(db, unit_settings, first.id or 0)  # already built
    with db.session() as session:
        row = session.get(DataExport, first.id)
        assert row is not None and row.status == "ready" and row.archive
        assert json.loads(row.archive)["profile"]["email"] == "a@example.org"
        assert row.expires_at is not None and row.ready_at is not None
        assert row.expires_at - row.ready_at == dt.timedelta(hours=24)
    assert "/account/data/export/" in link_in(outbox(unit_settings)[-1])


def test_the_link_opens_the_archive_for_its_member(db: Database, unit_settings: Settings) -> None:
    a, _b = _members(db)
    export_id = _ready(db, unit_settings, a)
    with db.session() as session:
        path = export.link_for(session, unit_settings, a, export_id)
        assert path is not None
        name, body = export.open_link(session, unit_settings, path.rsplit("/", 1)[1], a)
    assert name.endswith(".json") and json.loads(body)["format"] == "portail-export"


def test_a_forged_link_is_refused(db: Database, unit_settings: Settings) -> None:
    a, _b = _members(db)
    export_id = _ready(db, unit_settings, a)
    with db.session() as session:
        path = export.link_for(session, unit_settings, a, export_id)
        assert path is not None
        token = path.rsplit("/", 1)[1]
        for forged in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "garbage", ""):
            with pytest.raises(ConsentError) as caught:
                export.open_link(session, unit_settings, forged, a)
            assert caught.value.status == 400
        other_key = unit_settings.replace(secret_key="another-secret-key-" + "y" * 32)
        forged_path = export.link_for(session, other_key, a, export_id)
        assert forged_path is not None
        with pytest.raises(ConsentError):
            export.open_link(session, unit_settings, forged_path.rsplit("/", 1)[1], a)


def test_a_link_older_than_24_hours_is_refused(
    db: Database, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _b = _members(db)
    export_id = _ready(db, unit_settings, a)
    with db.session() as session:
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 25 * 3600)
        path = export.link_for(session, unit_settings, a, export_id)
        monkeypatch.undo()
        assert path is not None
        with pytest.raises(ConsentError) as caught:
            export.open_link(session, unit_settings, path.rsplit("/", 1)[1], a)
    assert caught.value.status == 410 and "expiré" in caught.value.message


def test_another_member_cannot_use_the_link(db: Database, unit_settings: Settings) -> None:
    a, b = _members(db)
    export_id = _ready(db, unit_settings, a)
    with db.session() as session:
        path = export.link_for(session, unit_settings, a, export_id)
        assert path is not None and export.link_for(session, unit_settings, b, export_id) is None
        with pytest.raises(ConsentError) as caught:
            export.open_link(session, unit_settings, path.rsplit("/", 1)[1], b)
    assert caught.value.status == 403


def test_an_expired_archive_is_dropped_and_its_link_refused(db: Database, unit_settings: Settings) -> None:
    a, _b = _members(db)
    export_id = _ready(db, unit_settings, a)
    with db.session() as session:
        path = export.link_for(session, unit_settings, a, export_id)
        row = session.get(DataExport, export_id)
        assert row is not None and path is not None
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
        session.add(row)
    with db.session() as session:
        assert export.expire(session) == 1
    with db.session() as session:
        row = session.get(DataExport, export_id)
        assert row is not None and row.archive is None and row.status == "expired"
        with pytest.raises(ConsentError) as caught:
            export.open_link(session, unit_settings, path.rsplit("/", 1)[1], a)
    assert caught.value.status == 410


def test_an_export_abandoned_by_a_stopped_worker_is_taken_again(db: Database, unit_settings: Settings) -> None:
    a, _b = _members(db)
    with db.session() as session:
        row = export.request_export(session, a)
        row.status, row.started_at = "running", utcnow() - dt.timedelta(hours=1)
        session.add(row)
    with db.session() as session:
        assert export.pending_ids(session) == [row.id]


def test_the_command_line_export_is_recorded(db: Database, unit_settings: Settings) -> None:
    a, _b = _members(db)
    with db.session() as session:
        document = json.loads(export.export_now(session, unit_settings, a))
    assert document["profile"]["name"] == "Ana"
    with db.session() as session:
        [row] = session.exec(select(DataExport)).all()
        assert row.channel == "cli" and row.archive is None
