"""``portail serve`` asks on every start whether an administrator exists: one read of a partial index."""

from __future__ import annotations

from sqlmodel import select

from portail.accounts import members
from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import create_member, db_call
from tests.query_plans import plan, scans_whole_table


def test_any_admin_tells_whether_an_administrator_exists(settings: Settings) -> None:
    assert db_call(settings, members.any_admin) is False
    create_member(settings, email="bob@example.org")
    assert db_call(settings, members.any_admin) is False
    create_member(settings, email="root@example.org", is_admin=True)
    assert db_call(settings, members.any_admin) is True


def test_the_administrator_lookup_reads_the_partial_index(settings: Settings) -> None:
    text = db_call(settings, plan, select(Member.id).where(Member.is_admin == True).limit(1))  # noqa: E712
    assert "ix_member_admin" in text
    assert not scans_whole_table(text, "member")
