"""Back-channel logout to a hoster's node goes through the outbound guard (``provisioning.hoster_clients``,
registered by ``startup.register_hooks``): the node's endpoints are the hoster's, not an administrator's."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from portail import db as database
from portail.accounts import sessions
from portail.accounts.extensions import AccountExtensions
from portail.config import Settings
from portail.federation import provisioning, startup
from portail.federation.models import Instance
from portail.oidc import backchannel, keys
from portail.oidc.clients import ClientSpec, create_client
from portail.oidc.extensions import ProviderExtensions
from portail.oidc.models import BackchannelDelivery, SessionClient
from tests.conftest import HttpRecorder, create_member


def _node(db: database.Database, slug: str, source: str, uri: str) -> None:
    with db.session() as s:
        create_client(
            s, ClientSpec(name=slug, client_id=slug, redirect_uris=["https://x.example/cb"], backchannel_logout_uri=uri)
        )
        s.add(
            Instance(
                slug=slug,
                name=slug,
                software="nextcloud",
                base_url=f"https://{slug}.example",
                source=source,
                client_id=slug,
            )
        )


def test_only_clients_of_nodes_registered_by_hosters_are_named(db: database.Database) -> None:
    _node(db, "hosted", "registry", "https://hosted.example/bc")
    _node(db, "declared", "file", "https://declared.example/bc")
    with db.session() as s:
        assert provisioning.hoster_clients(s, {"hosted", "declared", "other"}) == {"hosted"}
        assert provisioning.hoster_clients(s, set()) == set()


def test_a_hosters_node_is_not_sent_a_logout_token_on_a_private_address(
    db: database.Database, unit_settings: Settings, http_recorder: HttpRecorder
) -> None:
    keys.install(db, unit_settings)
    extensions = AccountExtensions.attached_to(db)
    provider = ProviderExtensions().attach(db)
    startup.register_hooks(extensions, provider, backchannel.install(db, extensions, unit_settings))
    strict = unit_settings.replace(allow_private_addresses=False)
    _node(db, "hosted", "registry", http_recorder.url("/bc"))
    _node(db, "declared", "file", http_recorder.url("/bc-declared"))
    alice = create_member(unit_settings)
    with db.session() as s:
        _token, row = sessions.open_session(s, alice)
        for client_id in ("hosted", "declared"):
            s.add(SessionClient(sid=row.sid, client_id=client_id, member_id=alice.id or 0))
    with db.session() as s:
        login = sessions.get_by_sid(s, row.sid)
        assert login is not None
        sessions.end_sessions(s, [login], "logout")

    async def deliver() -> int:
        async with backchannel.http_client(strict) as http:
            return await backchannel.deliver_due(db, strict, http)

    assert asyncio.run(deliver()) == 2
    with db.session() as s:
        rows = {r.client_id: r for r in s.exec(select(BackchannelDelivery))}
    assert rows["hosted"].status == "failed" and "address-loopback" in rows["hosted"].last_error
    assert rows["declared"].status == "sent"
    assert [r.path for r in http_recorder.requests] == ["/bc-declared"]
