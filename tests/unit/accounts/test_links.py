"""Single-use mailed links: once, before expiry, for their purpose only, untampered."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from portail.accounts import links
from portail.accounts.members import create_member
from portail.accounts.models import Member, OneTimeLink
from portail.db import Database, utcnow

KEY = "unit-test-secret-key-" + "k" * 32


def _member(session: Session) -> Member:
    return create_member(session, email="alice@example.org", name="Alice", password_hash="x")


def _refused(db: Database, purpose: str, token: str, reason: str, message: str) -> None:
    """The link is refused for ``reason``, and the member is told so in these words."""
    with db.session() as session, pytest.raises(links.LinkError) as raised:
        links.consume(session, KEY, purpose, token)
    assert (raised.value.reason, raised.value.message) == (reason, message)


def test_a_link_works_once(db: Database) -> None:
    with db.session() as session:
        token = links.issue(session, KEY, _member(session), "reset", dt.timedelta(hours=1))
    with db.session() as session:
        assert links.peek(session, KEY, "reset", token).purpose == "reset"  # peeking does not use it
    with db.session() as session:
        assert links.consume(session, KEY, "reset", token).purpose == "reset"
    _refused(db, "reset", token, "used", "Ce lien a déjà servi.")


def test_an_expired_link_is_refused(db: Database) -> None:
    with db.session() as session:
        token = links.issue(session, KEY, _member(session), "verify", dt.timedelta(hours=24))
    with db.session() as session:
        for row in list(session.exec(select(OneTimeLink))):
            row.expires_at = utcnow() - dt.timedelta(seconds=1)
            session.add(row)
    _refused(db, "verify", token, "expired", "Ce lien a expiré.")


def test_a_link_only_serves_its_purpose(db: Database) -> None:
    with db.session() as session:
        token = links.issue(session, KEY, _member(session), "verify", dt.timedelta(hours=24))
    _refused(db, "reset", token, "invalid", "Ce lien est invalide ou incomplet.")
    _refused(db, "email-change", token, "invalid", "Ce lien est invalide ou incomplet.")


@pytest.mark.parametrize(
    "tamper", [lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), lambda t: "x" + t, lambda t: ""]
)
def test_a_tampered_link_is_refused(db: Database, tamper) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        token = links.issue(session, KEY, _member(session), "reset", dt.timedelta(hours=1))
    _refused(db, "reset", tamper(token), "invalid", "Ce lien est invalide ou incomplet.")


def test_a_link_signed_with_another_key_is_refused(db: Database) -> None:
    with db.session() as session:
        token = links.issue(session, "another-key-" + "z" * 32, _member(session), "reset", dt.timedelta(hours=1))
    _refused(db, "reset", token, "invalid", "Ce lien est invalide ou incomplet.")


def test_a_new_link_replaces_the_unused_one_of_the_same_purpose(db: Database) -> None:
    with db.session() as session:
        member = _member(session)
        first = links.issue(session, KEY, member, "reset", dt.timedelta(hours=1))
        verify = links.issue(session, KEY, member, "verify", dt.timedelta(hours=1))
        second = links.issue(session, KEY, member, "reset", dt.timedelta(hours=1))
    _refused(db, "reset", first, "superseded", "Un lien plus récent vous a été envoyé : celui-ci ne fonctionne plus.")
    with db.session() as session:
        links.consume(session, KEY, "reset", second)
        links.consume(session, KEY, "verify", verify)


def test_only_a_hash_of_the_token_is_stored(db: Database) -> None:
    with db.session() as session:
        token = links.issue(session, KEY, _member(session), "reset", dt.timedelta(hours=1))
    with db.session() as session:
        [row] = list(session.exec(select(OneTimeLink)))
        assert len(row.token_hash) == 64 and row.token_hash not in token
