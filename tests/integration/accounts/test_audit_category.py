"""Audit events carry a category (the log they belong to, from the action's prefix), so that the
federation desk reads its decision log from an index instead of scanning ``action LIKE 'prefix%'``."""

from __future__ import annotations

import datetime as dt
from importlib import import_module
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import insert
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts import members
from portail.accounts.models import AuditEvent, audit_category
from portail.config import Settings
from portail.federation import overview
from tests.conftest import create_member, db_call, login
from tests.query_plans import plan, scans_whole_table

# action -> shown on /federation/admin (the rule of the former ``action LIKE`` filter)
ACTIONS = {
    "hoster.applied": True,
    "instance.approved": True,
    "federation.name": True,
    "organization.hosting_requested": True,
    "organization.role_changed": False,
    "member.login": False,
    "member.created": False,
    "consent.granted": False,
    "hosterish": False,
}


def _old_filter() -> sa.ColumnElement[bool]:
    """The desk's filter before categories (a scan of every audit event)."""
    return sa.or_(
        col(AuditEvent.action).startswith("hoster."),
        col(AuditEvent.action).startswith("instance."),
        col(AuditEvent.action).startswith("federation."),
        col(AuditEvent.action).startswith("organization.hosting"),
    )


def _write_events(db: Session) -> None:
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for n, action in enumerate(ACTIONS):
        event = members.audit(db, action, subject_type="test", subject_id=f"sujet-{n}")
        event.at = start + dt.timedelta(minutes=n)


def test_audit_writes_the_category_of_the_action(settings: Settings) -> None:
    def write(db: Session) -> dict[str, str]:
        _write_events(db)
        db.flush()
        return {e.action: e.category for e in db.exec(select(AuditEvent).where(AuditEvent.subject_type == "test"))}

    categories = db_call(settings, write)
    assert categories["hoster.applied"] == categories["organization.hosting_requested"] == "federation"
    assert categories["organization.role_changed"] == "organization"
    assert categories["member.login"] == "member" and categories["hosterish"] == "hosterish"
    assert all((category == "federation") == ACTIONS[action] for action, category in categories.items())


def test_a_core_insert_without_a_category_gets_one(settings: Settings) -> None:
    """Multi-row INSERTs (the CSV import) fill the category through the column's default."""

    def write(db: Session) -> list[str]:
        db.execute(insert(AuditEvent), [{"action": "member.imported"}, {"action": "instance.verified"}])
        return [e.category for e in db.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]

    assert db_call(settings, write)[-2:] == ["member", "federation"]


def test_the_desk_shows_the_same_decisions_as_the_former_filter(client: TestClient, settings: Settings) -> None:
    create_member(settings, email="root@example.org", is_admin=True)
    db_call(settings, _write_events)

    def both(db: Session) -> tuple[list[int | None], list[int | None]]:
        old = db.exec(select(AuditEvent).where(_old_filter()).order_by(col(AuditEvent.at).desc()).limit(50))
        new = db.exec(overview.decision_log_statement())
        return [e.id for e in old], [e.id for e, _name in new]

    old, new = db_call(settings, both)
    assert new == old and len(new) == 4
    login(client, "root@example.org")
    journal = client.get("/federation/admin").text.split('id="journal"')[1]
    for n, (_action, shown) in enumerate(ACTIONS.items()):
        assert (f"<td>sujet-{n}</td>" in journal) is shown


def test_the_decision_log_reads_the_category_index(settings: Settings) -> None:
    text = db_call(settings, plan, overview.decision_log_statement())
    assert "ix_audit_event_category_at" in text, text
    assert not scans_whole_table(text, "audit_event"), text


OLD_ROWS = [(n, action) for n, action in enumerate(list(ACTIONS) * 3, start=1)]


def _backfilled(url: str) -> dict[str, str]:
    """Migrate ``url`` up to accounts_0004, write audit events the old way, migrate to the heads."""
    engine = database.make_engine(url)
    try:
        cfg = database.alembic_config(url)
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "accounts_0004")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO audit_event (at, action, subject_type, subject_id, reason, ip_address)"
                    " VALUES (:at, :action, 'test', :n, '', '')"
                ),
                [
                    {"at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC), "action": action, "n": str(n)}
                    for n, action in OLD_ROWS
                ],
            )
        database.upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT action, category FROM audit_event")).all()
        with engine.begin() as connection:  # again, in chunks of 4 ids: across several chunk boundaries
            connection.execute(sa.text("UPDATE audit_event SET category = ''"))
            migration = import_module("portail.migrations.versions.accounts_0005_audit_category")
            migration.backfill(connection, chunk=4)
            rows += connection.execute(sa.text("SELECT action, category FROM audit_event WHERE id > 3")).all()
            assert connection.execute(sa.text("SELECT count(*) FROM audit_event WHERE category = ''")).scalar() == 0
    finally:
        engine.dispose()
    return {str(action): str(category) for action, category in rows}


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_migration_backfills_the_category_of_existing_events(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}" if engine == "sqlite" else request.getfixturevalue("fresh_postgres")
    categories = _backfilled(url)
    assert categories == {action: audit_category(action) for action in ACTIONS}
