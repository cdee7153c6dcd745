"""Erasing a member: nothing left that names or points to them, in any table; others untouched."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from portail.accounts.extensions import AccountExtensions
from portail.accounts.models import AuditEvent, LoginSession, LoginThrottle, Membership
from portail.config import Settings
from portail.consent import erasure, hooks
from portail.consent.models import DeletionRequest
from portail.db import Database
from portail.federation.models import Hoster, Instance, InstanceLink
from portail.oidc.models import ConsentEvent, RefreshToken
from tests.unit.consent.population import EMAIL, NAME, member_exists, mentions, populate


def test_erasure_leaves_neither_the_email_nor_the_name_in_any_table(db: Database) -> None:
    with db.session() as session:
        people = populate(session)
        assert mentions(session, EMAIL, NAME)  # the scan sees them before
    with db.session() as session:
        erasure.erase(session, people.member_id)
    with db.session() as session:
        assert mentions(session, EMAIL, NAME, "Lavoie-Tremblay") == []
        assert not member_exists(session, people.member_id)


def test_erasure_keeps_the_ledger_and_the_audit_log_without_the_member(db: Database, unit_settings: Settings) -> None:
    # as create_app does: the acceptance of Portail's policy at sign-up is a ledger event
    hooks.install(AccountExtensions.attached_to(db), unit_settings)
    with db.session() as session:
        people = populate(session)
    with db.session() as session:
        erasure.erase(session, people.member_id)
    with db.session() as session:
        events = session.exec(select(ConsentEvent)).all()
        assert len(events) == 3 and all(e.member_id is None and e.detail == "" for e in events)
        assert {e.action for e in events} == {"granted"}
        audit = session.exec(select(AuditEvent)).all()
        assert audit and all(people.member_id not in (a.member_id, a.actor_id) for a in audit)
        assert all(a.ip_address == "" for a in audit if a.action == "member.disabled")
        [request] = session.exec(select(DeletionRequest)).all()
        assert request.member_id is None and request.status == "cancelled"
        instance = session.exec(select(Instance)).one()
        assert instance.approved_by is None
        assert session.exec(select(InstanceLink)).one().requested_by is None
        assert session.exec(select(Hoster)).one().contact_email == ""
        assert session.exec(select(RefreshToken)).all() == []
        assert session.exec(select(LoginThrottle)).all() == []


def test_erasure_does_not_touch_another_member(db: Database) -> None:
    with db.session() as session:
        people = populate(session)
    with db.session() as session:
        erasure.erase(session, people.member_id)
    with db.session() as session:
        assert member_exists(session, people.other_id)
        assert len(session.exec(select(LoginSession).where(LoginSession.member_id == people.other_id)).all()) == 1
        assert len(session.exec(select(Membership).where(Membership.member_id == people.other_id)).all()) == 1
        assert mentions(session, "autre@example.org")


def test_every_table_that_names_a_member_is_reached(db: Database) -> None:
    """Tables added later by other packages are erased too, without editing erasure.py."""
    with db.session() as session:
        people = populate(session)
    with db.session() as session:
        erasure.erase(session, people.member_id)
    with db.session() as session:
        from sqlmodel import SQLModel

        for table in SQLModel.metadata.sorted_tables:
            if "member_id" in table.c and table.name not in erasure.KEPT_TABLES:
                left = session.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.member_id == people.member_id)
                ).scalar_one()
                assert left == 0, table.name
