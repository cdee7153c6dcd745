"""Memberships: roles, the last administrator, join requests and invitation links."""

from __future__ import annotations

import pytest

from portail.accounts import members, memberships, organizations
from portail.accounts.members import AccountError
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from tests import seed
from tests.conftest import outbox


def _people(s):  # type: ignore[no-untyped-def]
    admin = members.create_member(s, email="admin@example.org", name="Ada Admin", password_hash="x", verified=True)
    bob = members.create_member(s, email="bob@example.org", name="Bob", password_hash="x", verified=True)
    org = seed.organization(s, "centre", "Centre Solidaire", region="05")
    seed.membership(s, org.id, admin.id, role="admin")
    return admin, bob, org


def test_the_last_administrator_can_neither_leave_nor_be_demoted(db: Database) -> None:
    with db.session() as s:
        admin, bob, org = _people(s)
        with pytest.raises(AccountError):
            organizations.leave(s, admin, org)
        with pytest.raises(AccountError):
            organizations.set_role(s, admin, org, admin.public_id, "member")
        seed.membership(s, org.id, bob.id)
        organizations.set_role(s, admin, org, bob.public_id, "admin")
        organizations.set_role(s, admin, org, admin.public_id, "member")
        assert organizations.leave(s, admin, org) == "active"


def test_only_administrators_manage_members(db: Database) -> None:
    with db.session() as s:
        admin, bob, org = _people(s)
        seed.membership(s, org.id, bob.id)
        with pytest.raises(organizations.OrganizationForbidden):
            organizations.remove(s, bob, org, admin.public_id)
        with pytest.raises(organizations.OrganizationForbidden):
            organizations.set_role(s, bob, org, bob.public_id, "admin")


def test_a_join_request_mails_the_admins_and_approval_makes_a_member(db: Database, unit_settings: Settings) -> None:
    with db.session() as s:
        admin, bob, org = _people(s)
        assert memberships.request_to_join(s, unit_settings, bob, org, "http://p") == "requested"
        assert memberships.request_to_join(s, unit_settings, bob, org, "http://p") == "requested"
        assert outbox(unit_settings) == []  # mail goes out once the unit of work commits
    assert [m["To"] for m in outbox(unit_settings)] == ["admin@example.org"]
    with db.session() as s:
        memberships.approve(s, unit_settings, admin, org, bob.public_id, "http://p")
        row = organizations.membership_of(s, org.id, bob.id)
        assert row is not None and (row.status, row.role) == ("active", "member")
    assert outbox(unit_settings)[-1]["To"] == "bob@example.org"


def test_no_mail_goes_out_for_work_that_is_rolled_back(db: Database, unit_settings: Settings) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        _admin, bob, org = _people(s)
        memberships.request_to_join(s, unit_settings, bob, org, "http://p")
        raise RuntimeError("something later in the same unit of work fails")
    assert outbox(unit_settings) == []


def test_an_invitation_link_works_only_for_the_invited_address(db: Database, unit_settings: Settings) -> None:
    with db.session() as s:
        admin, bob, org = _people(s)
        memberships.invite(s, unit_settings, admin, org, "carole@example.org", "admin", "http://p")
    token = str(outbox(unit_settings)[-1].get_body(("plain",)).get_content()).split("token=")[1].split()[0]
    with db.session() as s:
        with pytest.raises(AccountError, match="autre adresse"):
            memberships.read_invitation(s, unit_settings, bob, token)
        carole = members.create_member(s, email="Carole@example.org", name="Carole", password_hash="x", verified=True)
        memberships.answer_link(s, unit_settings, carole, token, accept=True)
        row = organizations.membership_of(s, org.id, carole.id)
        assert row is not None and (row.status, row.role) == ("active", "admin")
        with pytest.raises(AccountError):
            memberships.read_invitation(s, unit_settings, carole, token + "x")


def test_a_withdrawn_invitation_link_no_longer_works(db: Database, unit_settings: Settings) -> None:
    with db.session() as s:
        admin, bob, org = _people(s)
        assert memberships.invite(s, unit_settings, admin, org, "bob@example.org", "member", "http://p") == "invited"
    token = str(outbox(unit_settings)[-1].get_body(("plain",)).get_content()).split("token=")[1].split()[0]
    with db.session() as s:
        organizations.remove(s, admin, org, bob.public_id)
        with pytest.raises(AccountError, match="retirée"):
            memberships.answer_link(s, unit_settings, bob, token, accept=True)
        assert organizations.membership_of(s, org.id, bob.id) is None


def test_choosing_a_territory_refuses_an_organization(db: Database) -> None:
    with db.session() as s:
        _admin, bob, org = _people(s)
        mrc = seed.territory(s, "mrc", "MRC", "05")
        assert organizations.set_territory(s, bob.id, mrc.id) == mrc
        with pytest.raises(AccountError):
            organizations.set_territory(s, bob.id, org.id)
        assert organizations.set_territory(s, bob.id, None) is None
        refreshed = s.get(Member, bob.id)
        assert refreshed is not None and refreshed.territory_id is None
