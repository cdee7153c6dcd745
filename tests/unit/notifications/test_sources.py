"""Nextcloud and Discourse adapters against faithful fakes of their published APIs; feed parsing
and plain-text extraction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import Session, select

from portail import db as database
from portail.accounts.models import Member
from portail.config import Settings
from portail.notifications import hub, inbox
from portail.notifications.aggregator import Aggregator
from portail.notifications.fetcher import Reply, SourceError
from portail.notifications.models import Notification, SourceLink, SourceState
from portail.notifications.plaintext import plain
from portail.notifications.sealing import seal, unseal
from portail.notifications.sources import feed, matrix
from portail.oidc import keys, subjects
from portail.oidc.models import Consent, OAuthClient
from tests.fakes.discourse import FakeDiscourse
from tests.fakes.nextcloud import FakeNextcloud
from tests.fakes.server import serve
from tests.unit.notifications.conftest import add_instance, add_member

TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def nextcloud() -> Iterator[tuple[FakeNextcloud, str]]:
    fake = FakeNextcloud(accept_token=lambda token: TOKENS.get(token))
    with serve(fake.app()) as base_url:
        yield fake, base_url


@pytest.fixture(scope="module")
def discourse() -> Iterator[tuple[FakeDiscourse, str]]:
    fake = FakeDiscourse()
    with serve(fake.app()) as base_url:
        yield fake, base_url


def _minter(session: Session, settings: Settings, member: Member, client: OAuthClient) -> str:
    token = f"jwt-for-{member.id}-aud-{client.client_id}"
    TOKENS[token] = f"user{member.id}"
    return token


def _run(db: database.Database, settings: Settings, member_id: int, *, dismiss: int | None = None) -> list[str]:
    async def scenario() -> list[str]:
        aggregator = Aggregator(db, settings, minter=_minter)
        try:
            report = await aggregator.refresh_member(member_id, force=True, budget=3)
            if dismiss is not None:
                with db.session() as session:
                    found = inbox.dismiss(session, member_id, dismiss)
                assert found is not None
                assert await aggregator.dismiss_at_source(*found)
            return report.unreachable
        finally:
            await aggregator.aclose()

    return asyncio.run(scenario())


def test_nextcloud_notifications_arrive_with_a_token_for_the_member_then_304_then_dismiss_deletes_at_source(
    fast_db: database.Database, fast_settings: Settings, nextcloud: tuple[FakeNextcloud, str]
) -> None:
    fake, base_url = nextcloud
    member = add_member(fast_db)
    instance = add_instance(fast_db, "nuage", "nextcloud", base_url, client_id="nc-client")
    with fast_db.session() as session:
        session.add(OAuthClient(client_id="nc-client", name="Nuage"))
        session.add(Consent(member_id=member.id or 0, client_id="nc-client", scopes="openid", policy_version="1"))
    fake.notify(f"user{member.id}", "Marie a partagé <b>rapport.pdf</b>", "avec vous", link=f"{base_url}/f/1")
    fake.notify("someone-else", "pas pour Alice")

    assert _run(fast_db, fast_settings, member.id or 0) == []
    with fast_db.session() as session:
        rows = session.exec(select(Notification)).all()
        cursor = session.exec(select(SourceState).where(SourceState.member_id == member.id)).one()
    assert [(r.title, r.body, r.origin, r.kind) for r in rows] == [
        ("Marie a partagé rapport.pdf", "avec vous", "nextcloud", "file")
    ]
    assert cursor.etag and cursor.status == "ok"
    headers = fake.requests[-1][2]
    assert headers["ocs-apirequest"] == "true" and headers["authorization"].startswith("Bearer jwt-for-")
    assert "application/json" in headers["accept"]

    # Unchanged: If-None-Match brings a 304 and nothing new.
    assert _run(fast_db, fast_settings, member.id or 0) == []
    assert fake.requests[-1][2]["if-none-match"] == cursor.etag

    # Dismissing in Portail deletes the notification in Nextcloud.
    assert _run(fast_db, fast_settings, member.id or 0, dismiss=rows[0].id) == []
    assert fake.notifications[f"user{member.id}"] == []
    assert fake.requests[-1][0] == "DELETE"
    assert instance.id is not None


def user_oidc_bearer(issuer: str, client_id: str, jwks: dict[str, Any]) -> Any:
    """What Nextcloud's user_oidc does with a bearer token when configured by the occ command Portail
    hands out (``--check-bearer=1 --mapping-uid=preferred_username``; integrations.md §1.1, its
    ``SelfEncodedValidator``): a JWT signed by the provider's JWKS, ``iss`` the issuer, ``aud``
    containing Nextcloud's client id, not expired; the user id is the mapped uid claim."""

    def accept(token: str) -> str | None:
        try:
            payload = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"]).claims
        except JoseError:
            return None
        audiences = payload.get("aud") if isinstance(payload.get("aud"), list) else [payload.get("aud")]
        if payload.get("iss") != issuer or client_id not in audiences or payload.get("exp", 0) < time.time():
            return None
        uid = payload.get("preferred_username")
        return uid if isinstance(uid, str) else None

    return accept


def test_nextcloud_accepts_the_token_portail_mints_as_user_oidc_configured_by_the_snippet_would(
    fast_db: database.Database, fast_settings: Settings
) -> None:
    """The hub's real minter (``hub.nextcloud_token``), not a hand-built token: Nextcloud finds the
    member under the user id it gave them at login (``preferred_username``)."""
    ring = keys.install(fast_db, fast_settings)
    fake = FakeNextcloud(accept_token=user_oidc_bearer(fast_settings.issuer, "nuage-reel", ring.jwks()))
    with serve(fake.app()) as base_url:
        member = add_member(fast_db, "lea.bouchard@example.org")
        add_instance(fast_db, "nuage-reel", "nextcloud", base_url, client_id="nuage-reel")
        with fast_db.session() as session:
            session.add(OAuthClient(client_id="nuage-reel", name="Nuage", subject_type="pairwise"))
            session.add(Consent(member_id=member.id or 0, client_id="nuage-reel", scopes="openid", policy_version="1"))
        with fast_db.session() as session:
            uid = subjects.username_for(session, member)
        fake.notify(uid, "Marie a partagé rapport.pdf")

        async def scenario() -> list[str]:
            aggregator = Aggregator(fast_db, fast_settings, minter=hub.nextcloud_token)
            try:
                return (await aggregator.refresh_member(member.id or 0, force=True, budget=3)).unreachable
            finally:
                await aggregator.aclose()

        assert asyncio.run(scenario()) == []
    with fast_db.session() as session:
        titles = [n.title for n in session.exec(select(Notification).where(Notification.member_id == member.id))]
    assert titles == ["Marie a partagé rapport.pdf"]


def test_nextcloud_refusing_the_token_marks_the_source_without_opening_the_breaker(
    fast_db: database.Database, fast_settings: Settings, nextcloud: tuple[FakeNextcloud, str]
) -> None:
    base_url = nextcloud[1]
    member = add_member(fast_db)
    add_instance(fast_db, "nuage2", "nextcloud", base_url + "/", client_id="nc2")
    with fast_db.session() as session:
        session.add(OAuthClient(client_id="nc2", name="Nuage 2"))
        session.add(Consent(member_id=member.id or 0, client_id="nc2", scopes="openid", policy_version="1"))

    def refusing(session: Session, settings: Settings, member: Member, client: OAuthClient) -> str:
        return "not-a-valid-token"

    async def scenario() -> list[str]:
        aggregator = Aggregator(fast_db, fast_settings, minter=refusing)
        try:
            return (await aggregator.refresh_member(member.id or 0, budget=3)).unreachable
        finally:
            await aggregator.aclose()

    for _ in range(3):
        assert asyncio.run(scenario()) == ["Nuage2"]
        with fast_db.session() as session:
            for row in session.exec(select(SourceState).where(SourceState.member_id == member.id)).all():
                row.fetched_at = None
                session.add(row)
    with fast_db.session() as session:
        states = {(s.member_id is None): s for s in session.exec(select(SourceState)).all()}
    assert states[False].status == "unauthorized"
    assert states[True].breaker == "closed"


def test_discourse_notifications_arrive_with_the_member_s_sealed_user_api_key(
    fast_db: database.Database, fast_settings: Settings, discourse: tuple[FakeDiscourse, str]
) -> None:
    fake, base_url = discourse
    member = add_member(fast_db)
    instance = add_instance(fast_db, "forum", "discourse", base_url)
    fake.keys["key-of-alice"] = "alice"
    first = fake.notify("alice", "Assemblée générale", kind=1, by="bob")
    with fast_db.session() as session:
        session.add(
            SourceLink(
                member_id=member.id or 0,
                instance_id=instance.id or 0,
                kind="discourse",
                account="alice",
                secret_sealed=seal(fast_settings.secret_key, "key-of-alice"),
            )
        )
        sealed = session.exec(select(SourceLink)).one().secret_sealed
    assert "key-of-alice" not in sealed and unseal(fast_settings.secret_key, sealed) == "key-of-alice"

    assert _run(fast_db, fast_settings, member.id or 0) == []
    fake.notify("alice", "Budget 2027", kind=2, by="carole")
    assert _run(fast_db, fast_settings, member.id or 0) == []
    with fast_db.session() as session:
        rows = sorted(session.exec(select(Notification)).all(), key=lambda n: n.id or 0)
    assert [(r.title, r.kind, r.body) for r in rows] == [
        ("Assemblée générale", "mention", "bob (mention)"),
        ("Budget 2027", "reply", "carole (reply)"),
    ]
    assert rows[0].link == f"{base_url}/t/un-sujet/42/2"
    assert _run(fast_db, fast_settings, member.id or 0, dismiss=rows[0].id) == []
    assert next(n for n in fake.notifications["alice"] if n["id"] == first)["read"] is True


def test_a_revoked_discourse_key_is_reported(
    fast_db: database.Database, fast_settings: Settings, discourse: tuple[FakeDiscourse, str]
) -> None:
    base_url = discourse[1]
    member = add_member(fast_db)
    instance = add_instance(fast_db, "forum2", "discourse", base_url + "/x")
    with fast_db.session() as session:
        session.add(
            SourceLink(
                member_id=member.id or 0,
                instance_id=instance.id or 0,
                kind="discourse",
                secret_sealed=seal(fast_settings.secret_key, "revoked"),
            )
        )
    assert _run(fast_db, fast_settings, member.id or 0) == ["Forum2"]


def _reply(body: bytes, content_type: str = "application/atom+xml") -> Reply:
    import httpx

    return Reply(200, httpx.Headers({"content-type": content_type}), body)


def test_feeds_with_a_dtd_or_entities_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        b"<rss><channel><item><title>&lol;</title></item></channel></rss>"
    )
    with pytest.raises(SourceError, match="DTD"):
        feed.parse(_reply(bomb))


def test_rss_and_json_feed_are_understood() -> None:
    rss = b"""<rss version="2.0"><channel><title>P</title><item><title>Une note</title>
    <link>https://praxis.example/n/1</link><guid>n1</guid><description>&lt;p&gt;Texte&lt;/p&gt;</description>
    <pubDate>Fri, 20 Nov 2026 10:00:00 +0000</pubDate></item></channel></rss>"""
    [item] = feed.parse(_reply(rss, "application/rss+xml"))
    assert (item.native_id, item.title, item.body, item.link) == (
        "n1",
        "Une note",
        "Texte",
        "https://praxis.example/n/1",
    )
    assert item.created_at is not None and item.created_at.year == 2026
    json_feed = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "P", '
        b'"items": [{"id": "7", "title": "T", "content_html": "<i>x</i>", "url": "https://p.example/7"}]}'
    )
    [item] = feed.parse(_reply(json_feed, "application/feed+json"))
    assert (item.native_id, item.body) == ("7", "x")
    with pytest.raises(SourceError):
        feed.parse(_reply(b'{"hello": 1}', "application/json"))


def test_plain_text_drops_markup_scripts_and_control_characters() -> None:
    assert (
        plain("<p>Salut <b>Alice</b></p><script>alert(1)</script>\x07 &amp; bienvenue", 100)
        == "Salut Alice & bienvenue"
    )
    assert plain("a" * 20, 10) == "aaaaaaaaa…"


def test_member_ids_do_not_leak_between_members(fast_db: database.Database) -> None:
    alice, bob = add_member(fast_db), add_member(fast_db, "bob@example.org")
    instance = add_instance(fast_db, "push", "passerelles", "https://p.example")
    with fast_db.session() as session:
        rows = [
            {"member_id": alice.id, "instance_id": instance.id, "external_id": "1", "title": "pour Alice"},
            {"member_id": bob.id, "instance_id": instance.id, "external_id": "2", "title": "pour Bob"},
        ]
        assert len(inbox.deliver(session, rows)) == 2
        assert inbox.deliver(session, rows) == []
    with fast_db.session() as session:
        assert [n.title for n, _ in inbox.list_for(session, alice.id or 0, inbox.Filters())] == ["pour Alice"]
        assert inbox.unread_count(session, bob.id or 0) == 1
        assert inbox.get(session, bob.id or 0, 1) is None


def test_a_matrix_notification_link_gives_back_its_room_and_event_for_read_receipts() -> None:
    raw = {
        "room_id": "!comite:localhost",
        "ts": 1_700_000_000_000,
        "read": False,
        "actions": ["notify"],
        "event": {"event_id": "$AbC/d+e:localhost", "sender": "@bob:localhost", "type": "m.room.message"},
    }
    _ts, item = matrix._item(raw)
    assert item.link is not None
    assert matrix.room_and_event(item.link) == ("!comite:localhost", "$AbC/d+e:localhost")
    assert matrix.room_and_event("https://matrix.to/#/@bob:localhost") is None
    assert matrix.room_and_event("https://evil.example/#/!a:b/$c") is None
