"""OIDC Back-Channel Logout 1.0: deliveries queued at session end, logout tokens, retries, claims.

Runs the domain against a real SQLite database and a real local HTTP server (``http_recorder``);
``deliver_due`` is called directly instead of waiting for the background sender.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from portail import db as database
from portail.accounts import expiry, sessions
from portail.accounts.extensions import AccountExtensions
from portail.accounts.models import Member
from portail.background import Runner
from portail.config import Settings
from portail.oidc import backchannel, keys
from portail.oidc.clients import ClientSpec, create_client
from portail.oidc.models import BackchannelDelivery, OAuthClient, SessionClient
from tests.conftest import HttpRecorder, create_member


@pytest.fixture
def setup(db: database.Database, unit_settings: Settings) -> backchannel.Setup:
    """What ``create_app`` does: the back-channel hook on the application's account extensions."""
    return backchannel.install(db, AccountExtensions.attached_to(db), unit_settings)


@pytest.fixture
def ring(db: database.Database, unit_settings: Settings, setup: backchannel.Setup) -> keys.KeyRing:
    return keys.install(db, unit_settings)


@pytest.fixture
def alice(unit_settings: Settings) -> Member:
    return create_member(unit_settings)


def _client(db: database.Database, uri: str | None, client_id: str = "tool", dynamic: bool = False) -> OAuthClient:
    with db.session() as s:
        client, _secret = create_client(
            s,
            ClientSpec(
                name="Tool", client_id=client_id, redirect_uris=["https://tool.example/cb"], backchannel_logout_uri=uri
            ),
        )
        client.registered_dynamically = dynamic
        s.add(client)
        return client


def _session_with(db: database.Database, member: Member, *client_ids: str) -> str:
    with db.session() as s:
        _token, row = sessions.open_session(s, member)
        for client_id in client_ids:
            s.add(SessionClient(sid=row.sid, client_id=client_id, member_id=member.id or 0))
        return row.sid


def _end(db: database.Database, sid: str) -> None:
    with db.session() as s:
        row = sessions.get_by_sid(s, sid)
        assert row is not None
        sessions.end_sessions(s, [row], "logout")


def _rows(db: database.Database) -> list[BackchannelDelivery]:
    with db.session() as s:
        return list(s.exec(select(BackchannelDelivery).order_by(BackchannelDelivery.id)))  # type: ignore[arg-type]


def _deliver(db: database.Database, settings: Settings) -> int:
    async def go() -> int:
        async with backchannel.http_client(settings) as http:
            return await backchannel.deliver_due(db, settings, http)

    return asyncio.run(go())


def _make_due(db: database.Database) -> None:
    with db.session() as s:
        for row in s.exec(select(BackchannelDelivery)):
            row.next_attempt_at = database.utcnow() - dt.timedelta(seconds=1)
            s.add(row)


@pytest.fixture
def recorder(http_recorder: HttpRecorder) -> Iterator[HttpRecorder]:
    yield http_recorder


def test_ending_a_session_queues_one_delivery_per_client_with_a_backchannel_uri(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder
) -> None:
    _client(db, recorder.url("/bc/a"), "a")
    _client(db, recorder.url("/bc/b"), "b")
    _client(db, None, "no-uri")
    sid = _session_with(db, alice, "a", "b", "no-uri")
    other = _session_with(db, alice, "a")
    _end(db, sid)
    rows = _rows(db)
    assert sorted((r.client_id, r.sid, r.status) for r in rows) == [("a", sid, "pending"), ("b", sid, "pending")]
    assert all(r.sid != other for r in rows)
    assert recorder.requests == []  # nothing is sent inside the member's request


def test_logout_token_has_the_claims_both_synapse_and_nextcloud_require(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    """Back-Channel Logout 1.0 §2.4: iss aud iat exp jti events (sid/sub), never nonce; typ logout+jwt."""
    _client(db, recorder.url("/backchannel"))
    sid = _session_with(db, alice, "tool")
    _end(db, sid)
    assert _deliver(db, unit_settings) == 1
    [request] = recorder.requests
    assert request.method == "POST" and request.path == "/backchannel"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    header, claims = ring.decode(request.form()["logout_token"])
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == unit_settings.issuer
    assert claims["aud"] == "tool"
    assert claims["sid"] == sid
    assert claims["sub"] and isinstance(claims["sub"], str)
    assert claims["exp"] - claims["iat"] == backchannel.TOKEN_SECONDS
    assert claims["jti"]
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims
    [row] = _rows(db)
    assert row.status == "sent" and row.attempts == 1 and row.last_status_code == 200 and row.sent_at is not None


def test_a_server_error_is_retried_with_exponential_backoff_then_fails(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    recorder.answer((503, "busy"))
    _client(db, recorder.url("/bc"))
    _end(db, _session_with(db, alice, "tool"))
    before = database.utcnow()
    _deliver(db, unit_settings)
    [row] = _rows(db)
    assert row.status == "retrying" and row.attempts == 1 and row.last_status_code == 503
    assert "503" in row.last_error
    assert row.next_attempt_at >= before + dt.timedelta(seconds=backchannel.BACKOFF_FIRST_SECONDS)
    assert _deliver(db, unit_settings) == 0  # not due yet
    for _attempt in range(backchannel.MAX_ATTEMPTS - 1):
        _make_due(db)
        assert _deliver(db, unit_settings) == 1
    [row] = _rows(db)
    assert row.status == "failed" and row.attempts == backchannel.MAX_ATTEMPTS
    assert len(recorder.requests) == backchannel.MAX_ATTEMPTS


def test_backoff_doubles_and_is_capped() -> None:
    assert [backchannel.backoff(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert backchannel.backoff(30).total_seconds() == backchannel.BACKOFF_MAX_SECONDS


def test_a_refused_token_fails_at_once_and_a_redirect_is_not_followed(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    _client(db, recorder.url("/refuse"), "refuse")
    _client(db, recorder.url("/moved"), "moved")
    recorder.answer((400, '{"error":"invalid_request"}'), (302, "", {"Location": recorder.url("/elsewhere")}))
    _end(db, _session_with(db, alice, "refuse"))
    _deliver(db, unit_settings)
    _end(db, _session_with(db, alice, "moved"))
    _deliver(db, unit_settings)
    refused, moved = _rows(db)
    assert refused.status == "failed" and refused.attempts == 1 and refused.last_status_code == 400
    assert moved.status == "retrying" and moved.last_status_code == 302
    assert [r.path for r in recorder.requests] == ["/refuse", "/moved"]


def test_an_unreachable_tool_is_retried_with_the_error_recorded(
    db: database.Database, ring: keys.KeyRing, alice: Member, unit_settings: Settings
) -> None:
    from tests.interop.synapse_harness import free_port

    _client(db, f"http://127.0.0.1:{free_port()}/bc")
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, unit_settings)
    [row] = _rows(db)
    assert row.status == "retrying" and row.last_status_code is None and "Connect" in row.last_error


def test_a_due_row_is_claimed_by_one_sender_only(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder
) -> None:
    _client(db, recorder.url("/bc"))
    _end(db, _session_with(db, alice, "tool"))
    now = database.utcnow()
    with db.session() as s:
        first = backchannel.claim_due(s, now)
    with db.session() as s:
        second = backchannel.claim_due(s, now)
    assert len(first) == 1 and second == []
    with db.session() as s:
        later = backchannel.claim_due(s, now + dt.timedelta(seconds=backchannel.LEASE_SECONDS + 1))
    assert len(later) == 1  # a sender that died leaves the row due again once the lease runs out


def test_a_claim_hides_the_row_for_the_lease_it_is_given_and_no_longer(
    db: database.Database, ring: keys.KeyRing, alice: Member
) -> None:
    """``deliver_due`` claims with ``backchannel_lease_seconds`` (the two-node journey of a node
    killed mid-delivery shows it end to end); here a 12 s lease instead of the default 60 s."""
    _client(db, "http://127.0.0.1:9/bc")  # never sent to here
    _end(db, _session_with(db, alice, "tool"))
    now = database.utcnow()
    with db.session() as s:
        [row] = backchannel.claim_due(s, now, lease=dt.timedelta(seconds=12))
        assert row.next_attempt_at is not None
        assert dt.timedelta(seconds=11) < row.next_attempt_at - now <= dt.timedelta(seconds=12)
    with db.session() as s:
        assert backchannel.claim_due(s, now + dt.timedelta(seconds=11)) == []
    with db.session() as s:
        assert len(backchannel.claim_due(s, now + dt.timedelta(seconds=13))) == 1


def test_a_dynamically_registered_client_is_not_sent_to_a_private_address(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    strict = unit_settings.replace(allow_private_addresses=False)
    _client(db, recorder.url("/bc"), dynamic=True)
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, strict)
    [row] = _rows(db)
    assert row.status == "failed" and "address-loopback" in row.last_error
    assert recorder.requests == []


def test_a_guarded_delivery_connects_to_the_address_that_was_checked(
    db: database.Database, ring: keys.KeyRing, alice: Member, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name first resolves to a public address, then to 127.0.0.1. The token must go
    to the address that was checked (the name stays in Host / SNI), and the name is resolved once.
    The resolver and the network transport are replaced at their boundary: no real network is used."""
    strict = unit_settings.replace(allow_private_addresses=False)
    answers = ["93.184.215.14", "127.0.0.1"]
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: object, port: object, *args: object, **kwargs: object) -> list[Any]:
        if host != "tool.example":
            return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
        asked.append(str(host))
        address = answers[min(len(asked) - 1, len(answers) - 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    sent: list[tuple[str, str]] = []

    async def network(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        sent.append((request.url.host, request.headers["host"]))
        return httpx.Response(200)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", network)
    _client(db, "https://tool.example/bc", dynamic=True)
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, strict)
    [row] = _rows(db)
    assert row.status == "sent"
    assert sent == [("93.184.215.14", "tool.example")]
    assert asked == ["tool.example"]


def test_an_administrators_client_is_sent_to_by_name_without_the_guard(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    """Clients created by an administrator (CLI, instances.toml) may use loopback even when the
    outbound guard would refuse it for hoster-supplied endpoints."""
    strict = unit_settings.replace(allow_private_addresses=False)
    _client(db, recorder.url("/bc").replace("127.0.0.1", "localhost"))
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, strict)
    [row] = _rows(db)
    assert row.status == "sent" and len(recorder.requests) == 1


def test_a_client_named_by_a_registered_finder_goes_through_the_guard(
    db: database.Database,
    ring: keys.KeyRing,
    setup: backchannel.Setup,
    alice: Member,
    recorder: HttpRecorder,
    unit_settings: Settings,
) -> None:
    """A higher package (the federation) names the clients a hoster configured; they are guarded too."""

    def only_tool(_db: object, ids: set[str]) -> set[str]:
        return {"tool"} & ids

    setup.guard_clients_found_by(only_tool)
    strict = unit_settings.replace(allow_private_addresses=False)
    _client(db, recorder.url("/bc"))
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, strict)
    [row] = _rows(db)
    assert row.status == "failed" and "address-loopback" in row.last_error
    assert recorder.requests == []


def test_withdrawing_consent_logs_the_member_out_of_that_client_in_every_live_session(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    _client(db, recorder.url("/bc/a"), "a")
    _client(db, recorder.url("/bc/b"), "b")
    first = _session_with(db, alice, "a", "b")
    second = _session_with(db, alice, "a")
    ended = _session_with(db, alice, "a")
    _end(db, ended)
    with db.session() as s:
        for row in s.exec(select(BackchannelDelivery)):
            s.delete(row)
    with db.session() as s:
        created = backchannel.logout_member_from_client(s, alice.id or 0, "a")
    assert sorted(r.sid for r in created) == sorted([first, second])
    _deliver(db, unit_settings)
    sids = sorted(ring.decode(r.form()["logout_token"])[1]["sid"] for r in recorder.requests)
    assert sids == sorted([first, second])
    _end(db, first)  # the session's own end no longer tells "a" again, but still tells "b"
    assert [r.client_id for r in _rows(db) if r.status == "pending"] == ["b"]


def test_withdrawing_a_client_logs_every_live_session_out_of_it_before_it_is_disabled(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    bob = create_member(unit_settings, "bob@example.org", "Bob")
    _client(db, recorder.url("/bc/a"), "a")
    _client(db, recorder.url("/bc/b"), "b")
    first = _session_with(db, alice, "a", "b")
    second = _session_with(db, bob, "a")
    ended = _session_with(db, alice, "a")
    _end(db, ended)
    with db.session() as s:
        for row in s.exec(select(BackchannelDelivery)):
            s.delete(row)
    with db.session() as s:
        created = backchannel.logout_client(s, "a")
        client = s.exec(select(OAuthClient).where(OAuthClient.client_id == "a")).one()
        client.disabled_at = client.created_at  # disabled in the same unit of work, after queuing
        s.add(client)
    assert sorted(r.sid for r in created) == sorted([first, second])
    _deliver(db, unit_settings)
    sids = sorted(ring.decode(r.form()["logout_token"])[1]["sid"] for r in recorder.requests)
    assert sids == sorted([first, second])
    with db.session() as s:
        assert [link.client_id for link in s.exec(select(SessionClient))] == ["b"]


def test_the_sender_wakes_up_when_a_logout_is_committed(
    db: database.Database,
    ring: keys.KeyRing,
    setup: backchannel.Setup,
    alice: Member,
    recorder: HttpRecorder,
    unit_settings: Settings,
) -> None:
    """The sender's periodic pass is an hour away and this process does not lead (another node holds
    the lock file): the commit that queued the logout wakes this process's sender at once."""
    _client(db, recorder.url("/bc"))
    sid = _session_with(db, alice, "tool")

    class Follower:
        async def acquire(self) -> bool:
            return False

        async def release(self) -> None:
            return None

    async def go() -> None:
        runner = Runner(unit_settings, db, leadership=Follower())
        backchannel.register_tasks(runner, setup, db, unit_settings)
        runner.tasks["backchannel"].every = runner.tasks["backchannel"].first_delay = 3600
        runner.start()
        try:
            await asyncio.to_thread(_end, db, sid)
            for _ in range(200):
                if recorder.requests:
                    break
                await asyncio.sleep(0.025)
        finally:
            await runner.stop()

    asyncio.run(go())
    assert len(recorder.requests) == 1


def test_a_rolled_back_logout_does_not_wake_the_sender(
    db: database.Database, ring: keys.KeyRing, setup: backchannel.Setup, alice: Member
) -> None:
    woken: list[int] = []
    setup.wake = lambda: woken.append(1)
    _client(db, "https://tool.example/bc")
    sid = _session_with(db, alice, "tool")
    with pytest.raises(RuntimeError), db.session() as s:
        row = sessions.get_by_sid(s, sid)
        assert row is not None
        sessions.end_sessions(s, [row], "logout")
        raise RuntimeError("undone")
    assert woken == [] and _rows(db) == []
    _end(db, sid)
    assert woken == [1]  # once per unit of work, after its commit


def test_admin_counts_group_deliveries_by_status(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    _client(db, recorder.url("/bc"))
    recorder.answer((200, ""), (500, ""))
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, unit_settings)
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, unit_settings)
    with db.session() as s:
        counts = backchannel.counts_by_client(s)["tool"]
        recent = backchannel.recent_deliveries(s, "tool")
    assert (counts.sent, counts.retrying, counts.failed, counts.pending) == (1, 1, 0, 0)
    assert [r.status for r in recent] == ["retrying", "sent"]


def test_http_client_has_an_explicit_timeout_and_follows_no_redirect(unit_settings: Settings) -> None:
    client = backchannel.http_client(unit_settings)
    try:
        assert client.timeout == httpx.Timeout(unit_settings.outbound_timeout_seconds)
        assert client.follow_redirects is False
    finally:
        asyncio.run(client.aclose())


def test_sessions_that_expired_unnoticed_are_ended_and_their_tools_told(
    db: database.Database, ring: keys.KeyRing, alice: Member, recorder: HttpRecorder, unit_settings: Settings
) -> None:
    _client(db, recorder.url("/bc"))
    idle = _session_with(db, alice, "tool")
    live = _session_with(db, alice, "tool")
    with db.session() as s:
        row = sessions.get_by_sid(s, idle)
        assert row is not None
        row.last_seen_at = database.utcnow() - dt.timedelta(minutes=unit_settings.session_idle_minutes + 1)
        s.add(row)
    with db.session() as s:
        assert expiry.end_expired_sessions(s, unit_settings, database.utcnow()) == 1
    with db.session() as s:
        assert expiry.end_expired_sessions(s, unit_settings, database.utcnow()) == 0
        ended = sessions.get_by_sid(s, idle)
        kept = sessions.get_by_sid(s, live)
        assert ended is not None and kept is not None
        assert ended.ended_at is not None and ended.end_reason == "expired" and kept.ended_at is None
    assert [(r.sid, r.status) for r in _rows(db)] == [(idle, "pending")]


def test_a_guarded_endpoint_whose_name_does_not_resolve_is_retried(
    db: database.Database, ring: keys.KeyRing, alice: Member, unit_settings: Settings
) -> None:
    """A DNS failure may be transient (unlike an address the guard refuses): the delivery is retried."""
    _client(db, "https://nonexistent.invalid/bc", dynamic=True)
    _end(db, _session_with(db, alice, "tool"))
    _deliver(db, unit_settings.replace(allow_private_addresses=False))
    [row] = _rows(db)
    assert row.status == "retrying" and row.last_error.startswith("refused by the outbound guard: dns")
