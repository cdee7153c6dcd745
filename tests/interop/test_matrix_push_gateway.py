"""A real Synapse pushes a linked member's notifications to Portail's push gateway (Push Gateway API
v1): linking registers Portail's HTTP pusher on the homeserver, a mention in a room reaches the
member's inbox and live stream (SSE) without any pull, and unlinking removes the pusher.

Portail and Synapse run on loopback, which Synapse's default ``ip_range_blacklist`` forbids to
pushers (``push/httppusher.py`` posts through the IP-blocklisted client), so this Synapse lists
``127.0.0.1`` and ``::1`` in ``ip_range_whitelist`` — what an operator whose Portail is on a private
address must do. Synapse and Portail start once for the module (the tests run in order).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlmodel import select

from portail.federation.models import Instance
from portail.notifications import gateway, linking
from portail.notifications.models import MatrixPusher, SourceLink
from portail.notifications.sealing import unseal
from tests.conftest import PASSWORD, create_member, csrf_from, make_settings
from tests.interop.conftest import LiveServer, synapse_provider
from tests.interop.forms import browser
from tests.interop.matrix_linking import link_matrix, log_in
from tests.interop.synapse_harness import SynapseServer, SynapseUser, ensure_synapse_venv, free_port

pytestmark = pytest.mark.interop

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_PUSHES = {"ip_range_whitelist": ["127.0.0.1", "::1"]}


@dataclass
class Linked:
    hs: SynapseServer
    portail: LiveServer
    agent: httpx.Client
    bob: SynapseUser
    account: str
    instance_id: int
    token: str  # the access token of Portail's device for the member


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Linked]:
    """Portail and a Synapse that may push to it; Alice logged in to Portail, her Matrix account linked."""
    work = tmp_path_factory.mktemp("push-gateway")
    shutil.copy(sqlite_template, work / "portail.db")
    port = free_port()
    settings = make_settings(
        work,
        f"sqlite:///{work / 'portail.db'}",
        issuer=f"http://localhost:{port}",
        notification_refresh_seconds=3600,  # no background pass during the module
    )
    portail = LiveServer(settings, port).start()
    hs_port = free_port()
    hs = SynapseServer(
        ensure_synapse_venv(PROJECT_ROOT),
        work / "synapse",
        hs_port,
        oidc_provider=synapse_provider(portail, f"http://localhost:{hs_port}/"),
        sso_client_whitelist=[f"{portail.issuer}{linking.CALLBACK}"],
        extra_config=LOOPBACK_PUSHES,
    )
    agent = browser()
    try:
        hs.start()
        member = create_member(settings, "alice@example.org", "Alice Tremblay")
        with portail.db.session() as session:
            instance = Instance(
                slug="matrix",
                name="Matrix En commun",
                software="matrix",
                base_url=hs.public_baseurl.rstrip("/"),
                status="active",
                client_id="synapse",
                provider_identifier="portail",
            )
            session.add(instance)
            session.flush()
            instance_id = instance.id or 0
        log_in(agent, portail.issuer, member.email)
        answer = link_matrix(agent, portail.issuer, hs, instance_id)
        assert answer.status_code == 303, answer.text[:800]
        with portail.db.session() as session:
            link = session.exec(select(SourceLink)).one()
            account, token = link.account, unseal(settings.secret_key, link.secret_sealed)
        bob = hs.register_user("bob", PASSWORD, admin=True, displayname="Bob")
        yield Linked(hs, portail, agent, bob, account, instance_id, token)
    finally:
        agent.close()
        hs.stop()
        portail.stop()


def _pushers(linked: Linked) -> list[dict[str, Any]]:
    path = f"/_synapse/admin/v1/users/{quote(linked.account, safe='')}/pushers"
    pushers: list[dict[str, Any]] = linked.hs.api_json("GET", path, linked.bob.access_token)["pushers"]
    return pushers


def test_linking_registers_portail_as_the_member_s_push_gateway(linked: Linked) -> None:
    """Client-server API "Push notifications": an HTTP pusher whose data.url is Portail's notify endpoint."""
    [pusher] = linked.hs.api_json("GET", "/_matrix/client/v3/pushers", linked.token)["pushers"]
    assert pusher["kind"] == "http" and pusher["app_id"] == gateway.APP_ID
    assert pusher["data"] == {"url": f"{linked.portail.issuer}/_matrix/push/v1/notify"}  # no format: full events
    with linked.portail.db.session() as session:
        stored = session.exec(select(MatrixPusher)).one()
    assert stored.status == "active" and stored.pushkey_hash == gateway.hash_pushkey(pusher["pushkey"])
    assert pusher["pushkey"] not in stored.pushkey_hash


class LiveStream:
    """Reads the member's ``/notifications/stream`` in a thread and keeps the events' data lines."""

    def __init__(self, issuer: str, cookies: httpx.Cookies) -> None:
        self.events: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self.arrived = threading.Event()
        self.http = httpx.Client(cookies=cookies, timeout=httpx.Timeout(60.0))
        self.thread = threading.Thread(target=self._read, args=(f"{issuer}/notifications/stream",), daemon=True)
        self.thread.start()
        assert self.opened.wait(30), "the live stream did not open"

    def _read(self, url: str) -> None:
        try:
            with self.http.stream("GET", url) as response:
                self.opened.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        self.events.append(event)
                        if "procès-verbal" in event["body"]:
                            self.arrived.set()
                            return
        except httpx.HTTPError:
            return  # closed by the test

    def close(self) -> None:
        self.http.close()


def test_a_mention_reaches_the_inbox_and_the_live_stream_pushed_without_a_pull(linked: Linked) -> None:
    hs, bob, account = linked.hs, linked.bob, linked.account
    stream = LiveStream(linked.portail.issuer, linked.agent.cookies)
    try:
        room_id = hs.api_json("POST", "/_matrix/client/v3/createRoom", bob.access_token, json={"name": "Comité"})[
            "room_id"
        ]
        room = quote(room_id, safe="")
        hs.api_json("POST", f"/_synapse/admin/v1/join/{room}", bob.access_token, json={"user_id": account})
        hs.api_json(
            "PUT",
            f"/_matrix/client/v3/rooms/{room}/send/m.room.message/txn1",
            bob.access_token,
            json={
                "msgtype": "m.text",
                "body": "Alice: peux-tu relire le procès-verbal ?",
                "m.mentions": {"user_ids": [account]},
            },
        )
        assert stream.arrived.wait(30), ("no live event", stream.events, hs.diagnostics())
        [live] = [event for event in stream.events if "procès-verbal" in event["body"]]
        assert live["type"] == "mention" and live["tool"] == "Matrix En commun"
    finally:
        stream.close()
    aggregator = linked.portail.app.state.notifications.aggregator
    assert aggregator.pulls["matrix"] == 0  # it came by push: Portail never asked Synapse
    [mention] = [
        n
        for n in linked.agent.get(f"{linked.portail.issuer}/api/v1/me/notifications").json()["notifications"]
        if "procès-verbal" in n["body"]
    ]
    assert mention["type"] == "mention" and mention["title"] == "@bob:localhost"
    assert mention["tool"]["name"] == "Matrix En commun"
    assert "procès-verbal" in linked.agent.get(f"{linked.portail.issuer}/notifications").text
    assert aggregator.pulls["matrix"] == 0  # the pusher has pushed: opening the inbox does not pull Matrix
    with linked.portail.db.session() as session:
        assert session.exec(select(MatrixPusher)).one().last_push_at is not None


def test_unlinking_removes_the_pusher_from_the_homeserver(linked: Linked) -> None:
    assert len(_pushers(linked)) == 1
    issuer = linked.portail.issuer
    prefs = linked.agent.get(f"{issuer}/notifications/preferences")
    assert "envoie vos notifications directement à Portail" in prefs.text
    answer = linked.agent.post(
        f"{issuer}/notifications/unlink/{linked.instance_id}", data={"csrf_token": csrf_from(prefs.text)}
    )
    assert answer.status_code == 303
    deadline = time.monotonic() + 10
    while _pushers(linked) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _pushers(linked) == []
    with linked.portail.db.session() as session:
        assert session.exec(select(MatrixPusher)).first() is None
