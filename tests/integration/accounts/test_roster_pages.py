"""An organization's member list is read in keyset pages (``?after=<membership id>``, ``?last=1``)
with a capped count: its cost does not grow with the organization's size."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts import organizations
from portail.accounts.models import Member, Membership
from portail.config import Settings
from portail.db import Database
from tests import seed
from tests.conftest import db_call, login
from tests.query_plans import plan, scans_whole_table

NAME = re.compile(r"<td>([^<]+)<br><small>")
NEXT = re.compile(r'href="\?after=(\d+)" rel="next"')


def _people(db: Session, organization_id: int, count: int, *, status: str = "active") -> None:
    """``count`` members of the organization, in two multi-row INSERTs (no ORM object per row)."""
    start = len(db.exec(Member.__table__.select()).all())  # type: ignore[attr-defined]
    rows = [
        {
            "public_id": f"p{start + n:031d}",
            "email": f"personne{start + n}@example.org",
            "email_key": f"personne{start + n}@example.org",
            "name": f"Personne {start + n}",
            "password_hash": "x",
            "locale": "fr-CA",
            "is_admin": False,
            "roles": "",
            "terms_version": "",
            "privacy_version": "",
        }
        for n in range(count)
    ]
    ids = db.execute(insert(Member).returning(Member.id), rows).scalars().all()  # type: ignore[arg-type]
    db.execute(
        insert(Membership),
        [{"organization_id": organization_id, "member_id": i, "role": "member", "status": status} for i in ids],
    )


def _in_english(db: Session) -> None:
    alice = db.exec(select(Member).where(Member.email_key == "alice@example.org")).one()
    alice.locale = "en"
    db.add(alice)


@pytest.fixture
def centre(settings: Settings, member: Member) -> int:
    """Alice (``member``) administers Centre Solidaire, which has 11 other active members."""
    db = Database(settings)
    with db.session() as s:
        org = seed.organization(s, "centre", "Centre Solidaire", region="05")
        seed.membership(s, org.id, member.id, role="admin")
        _people(s, org.id or 0, 11)
        _people(s, org.id or 0, 2, status="requested")
        org_id = org.id or 0
    db.dispose()
    return org_id


def test_keyset_pages_show_every_member_exactly_once(
    client: TestClient, centre: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(organizations, "ROSTER_PAGE", 5)
    login(client)
    seen: list[str] = []
    url = "/organizations/centre"
    pages = 0
    while True:
        page = client.get(url)
        assert page.status_code == 200, page.text
        members = page.text.split('id="members-h"')[1]
        seen += NAME.findall(members)
        pages += 1
        following = NEXT.search(page.text)
        if following is None:
            break
        assert "Première page" in page.text or pages == 1
        url = f"/organizations/centre?after={following.group(1)}"
    assert pages == 3  # 12 active members by 5
    assert "Alice Tremblay" in seen and len(seen) == 12 and len(set(seen)) == 12
    assert not any(name in seen for name in ("Personne 12", "Personne 13"))  # requested, not members yet
    assert "Membres (12)" in client.get("/organizations/centre").text


def test_the_last_page_reads_backwards_and_links_to_the_first(
    client: TestClient, centre: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(organizations, "ROSTER_PAGE", 5)
    login(client)
    last = client.get("/organizations/centre?last=1")
    assert last.status_code == 200
    assert NAME.findall(last.text.split('id="members-h"')[1]) == [f"Personne {n}" for n in range(7, 12)]
    assert NEXT.search(last.text) is None and 'href="?">Première page' in last.text
    assert 'href="?last=1"' not in last.text


BAD = ["after=abc", "after=-1", "after=0", "after=²", "after=" + "9" * 30, "after=", "last=yes", "last=1&after=3"]


@pytest.mark.parametrize("query", BAD)
def test_a_malformed_cursor_is_a_bilingual_400_page(
    client: TestClient, settings: Settings, centre: int, query: str
) -> None:
    login(client)
    page = client.get(f"/organizations/centre?{query}")
    assert page.status_code == 400
    assert "Ce lien de page de la liste des membres n’est pas valide" in page.text
    assert 'href="/organizations/centre"' in page.text
    db_call(settings, _in_english)
    english = client.get(f"/organizations/centre?{query}")
    assert english.status_code == 400
    assert "This link to a page of the member list is not valid" in english.text


def test_a_former_page_number_is_the_first_page(client: TestClient, centre: int) -> None:
    login(client)
    assert client.get("/organizations/centre?page=3").status_code == 200


def test_the_count_stops_at_a_thousand(client: TestClient, settings: Settings, centre: int) -> None:
    login(client)
    db_call(settings, _people, centre, 988)  # 999 + Alice: exactly 1,000
    assert "Membres (1000)" in client.get("/organizations/centre").text
    db_call(settings, _people, centre, 1)
    page = client.get("/organizations/centre")
    assert "Membres (plus de 1 000)" in page.text
    db_call(settings, _in_english)
    english = client.get("/organizations/centre")
    assert "Members (more than 1,000)" in english.text


def test_the_count_reads_at_most_the_cap_plus_one(settings: Settings, centre: int) -> None:
    assert db_call(settings, organizations.active_count, centre, 5) == (5, True)
    assert db_call(settings, organizations.active_count, centre, 12) == (12, False)


def test_a_roster_page_reads_the_roster_index(settings: Settings, centre: int) -> None:
    for statement in (
        organizations.roster_page_statement(centre, 42),
        organizations.roster_page_statement(centre, last=True),
    ):
        text = db_call(settings, plan, statement)
        assert "ix_membership_roster" in text, text
        assert not scans_whole_table(text, "membership"), text


def test_the_capped_count_reads_the_roster_index(settings: Settings, centre: int) -> None:
    counted = (
        select(Membership.id)
        .where(Membership.organization_id == centre, Membership.status == "active")
        .limit(organizations.ROSTER_COUNT_CAP + 1)
    )
    text = db_call(settings, plan, counted)
    assert "ix_membership_roster" in text, text
    assert not scans_whole_table(text, "membership"), text
