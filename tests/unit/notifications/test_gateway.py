"""Registering Portail's pusher (client-server API ``POST /_matrix/client/v3/pushers/set``): what is
sent, what is stored (only the pushkey's hash), and a refusal that leaves the account pulled."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlmodel import select

from portail import db as database
from portail.accounts.models import Member
from portail.config import Settings
from portail.notifications import gateway, planning
from portail.notifications.fetcher import Fetcher
from portail.notifications.models import MatrixPusher, SourceLink
from tests.unit.notifications.conftest import add_instance, add_member

BASE = "http://hs.example"


def _setup(db: database.Database) -> tuple[int, int]:
    member = add_member(db)
    instance = add_instance(db, "matrix", "matrix", BASE)
    with db.session() as session:
        session.add(
            SourceLink(member_id=member.id or 0, instance_id=instance.id or 0, kind="matrix", secret_sealed="x")
        )
    return member.id or 0, instance.id or 0


def _register(
    db: database.Database, settings: Settings, ids: tuple[int, int], status: int, seen: list[dict[str, object]]
) -> bool:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"path": request.url.path, "auth": request.headers["authorization"], **json.loads(request.content)})
        return httpx.Response(status, json={} if status == 200 else {"errcode": "M_UNKNOWN"})

    async def scenario() -> bool:
        fetcher = Fetcher(timeout=2, max_bytes=10_000, transport=httpx.MockTransport(handler))
        try:
            return await gateway.register(fetcher, db, settings, ids[0], ids[1], BASE, "syt_token")
        finally:
            await fetcher.aclose()

    return asyncio.run(scenario())


def _pulled_sources(db: database.Database, settings: Settings, member_id: int) -> list[str]:
    with db.session() as session:
        found = session.get(Member, member_id)
        assert found is not None
        return [source for source, *_rest in planning.candidates(session, settings, found, None)]


def test_registering_sends_an_http_pusher_to_portail_s_gateway_and_keeps_only_a_hash(
    db: database.Database, unit_settings: Settings
) -> None:
    ids = _setup(db)
    member_id = ids[0]
    seen: list[dict[str, object]] = []
    assert _register(db, unit_settings, ids, 200, seen) is True
    [call] = seen
    assert call["path"] == "/_matrix/client/v3/pushers/set" and call["auth"] == "Bearer syt_token"
    assert call["kind"] == "http" and call["app_id"] == "ca.encommun.portail"
    assert call["data"] == {"url": f"{unit_settings.issuer}/_matrix/push/v1/notify"}  # no "format": full events
    pushkey = str(call["pushkey"])
    assert len(pushkey) >= 40
    with db.session() as session:
        row = session.exec(select(MatrixPusher)).one()
        assert row.status == "active" and row.pushkey_hash == gateway.hash_pushkey(pushkey) != pushkey
    assert _pulled_sources(db, unit_settings, member_id) == ["matrix"]  # until the homeserver pushes once
    with db.session() as session:
        row = session.exec(select(MatrixPusher)).one()
        row.last_push_at = row.created_at
        session.add(row)
    assert _pulled_sources(db, unit_settings, member_id) == []  # pushed, so never pulled


def test_a_pusher_refused_by_the_homeserver_leaves_the_account_pulled(
    db: database.Database, unit_settings: Settings
) -> None:
    ids = _setup(db)
    member_id = ids[0]
    assert _register(db, unit_settings, ids, 400, []) is False
    with db.session() as session:
        row = session.exec(select(MatrixPusher)).one()
        assert row.status == "refused" and "400" in row.error
    assert _pulled_sources(db, unit_settings, member_id) == ["matrix"]


def test_each_registration_gets_a_new_unguessable_pushkey(db: database.Database, unit_settings: Settings) -> None:
    ids = _setup(db)
    seen: list[dict[str, object]] = []
    _register(db, unit_settings, ids, 200, seen)
    _register(db, unit_settings, ids, 200, seen)
    assert seen[0]["pushkey"] != seen[1]["pushkey"]
    with db.session() as session:
        [row] = session.exec(select(MatrixPusher)).all()  # one row per member and instance
        assert row.pushkey_hash == gateway.hash_pushkey(str(seen[1]["pushkey"]))
