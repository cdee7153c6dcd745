"""Subject identifiers (OIDC Core §8) and preferred_username."""

from __future__ import annotations

from portail.accounts import members
from portail.accounts.models import Member
from portail.db import Database
from portail.oidc import subjects
from portail.oidc.models import OAuthClient


def _member(db: Database, email: str) -> int:
    with db.session() as session:
        return members.create_member(session, email=email, name="X", password_hash="h", verified=True).id or 0


def _client(client_id: str, sector: str, subject_type: str = "pairwise") -> OAuthClient:
    return OAuthClient(client_id=client_id, name=client_id, sector_identifier=sector, subject_type=subject_type)


def test_pairwise_subjects_differ_per_sector_and_are_stable(db: Database) -> None:
    member_id = _member(db, "alice@example.org")
    with db.session() as session:
        member = session.get(Member, member_id)
        assert member is not None
        a1 = subjects.subject_for(session, "k", member, _client("a1", "a.example"))
        a2 = subjects.subject_for(session, "k", member, _client("a2", "a.example"))
        b = subjects.subject_for(session, "k", member, _client("b", "b.example"))
        public = subjects.subject_for(session, "k", member, _client("p", "p.example", "public"))
    assert a1 == a2 != b
    assert public == member.public_id and public not in (a1, b)
    assert len(a1) == 43  # base64url of 32 bytes, no padding
    with db.session() as session:
        member = session.get(Member, member_id)
        assert member is not None
        # a changed secret key cannot change a subject already handed out
        assert subjects.subject_for(session, "other-key", member, _client("a1", "a.example")) == a1
        found = subjects.member_for_subject(session, _client("a1", "a.example"), a1)
        assert found is not None and found.id == member_id
        assert subjects.member_for_subject(session, _client("b", "b.example"), a1) is None
        assert subjects.member_for_subject(session, _client("p", "p.example", "public"), public) is not None


def test_pairwise_value_is_an_hmac_of_sector_and_public_id() -> None:
    assert subjects.pairwise_value("k", "s", "id") == subjects.pairwise_value("k", "s", "id")
    assert subjects.pairwise_value("k", "s", "id") != subjects.pairwise_value("k2", "s", "id")
    assert subjects.pairwise_value("k", "s", "id") != subjects.pairwise_value("k", "t", "id")


def test_username_base_is_a_matrix_safe_localpart() -> None:
    assert subjects.username_base("Élise.Roy+tag@example.org") == "elise.roy"
    assert subjects.username_base("Jean Dupont@example.org") == "jean-dupont"
    assert subjects.username_base("__@example.org") == "membre"
    assert subjects.username_base("北京@example.org") == "membre"
    long = subjects.username_base("a" * 80 + "@example.org")
    assert len(long) <= subjects.USERNAME_MAX


def test_usernames_are_unique_and_never_change(db: Database) -> None:
    first = _member(db, "marie@example.org")
    second = _member(db, "marie@example.net")
    with db.session() as session:
        one = session.get(Member, first)
        two = session.get(Member, second)
        assert one is not None and two is not None
        assert subjects.username_for(session, one) == "marie"
        assert subjects.username_for(session, two) == "marie-2"
        one.email = "someone-else@example.org"
        assert subjects.username_for(session, one) == "marie"
