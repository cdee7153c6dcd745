"""A real Synapse feeds Portail's inbox, linked through Portail's own SSO: another user mentions the
member in a room, and the mention appears in the member's inbox (page and JSON API).

Linking goes over real HTTP end to end, with one cookie-keeping client playing the browser:
the member, logged in to Portail (served by uvicorn, issuer ``http://localhost:<port>``), clicks
"Lier mon compte Matrix" → Synapse's ``/_matrix/client/v3/login/sso/redirect/oidc-portail?redirectUrl=
<Portail callback>`` → Portail's ``/authorize`` (the member already has a session; consent if asked)
→ Synapse's ``/_synapse/client/oidc/callback`` (Synapse calls Portail's token endpoint server-side) →
Synapse redirects to Portail's callback with ``loginToken`` (the callback is in Synapse's
``sso.client_whitelist``, so no confirmation page) → Portail exchanges it (``m.login.token``) for a
device of its own. The Matrix account is the one Synapse provisions from Portail's claims
(``localpart_template: {{ user.preferred_username }}``). Unlinking logs that device out (checked in
Synapse's admin device list).

This Synapse keeps its default ``ip_range_blacklist``, so the pusher Portail registers at linking
cannot reach Portail on loopback: the mention arrives by the pull, the fallback for a pusher that
has never pushed (the push path is ``test_matrix_push_gateway.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import select

from portail.federation.models import Instance
from portail.notifications import linking
from portail.notifications.models import SourceLink
from portail.notifications.sealing import unseal
from tests.conftest import PASSWORD, create_member, csrf_from
from tests.interop.conftest import LiveServer, synapse_provider
from tests.interop.forms import browser
from tests.interop.matrix_linking import link_matrix, log_in
from tests.interop.synapse_harness import SynapseServer, ensure_synapse_venv, free_port

pytestmark = pytest.mark.interop

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def synapse_with_portail(
    live_portail: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SynapseServer, LiveServer]]:
    """Synapse with Portail as its OIDC provider ``portail`` and Portail's link callback whitelisted."""
    python = ensure_synapse_venv(PROJECT_ROOT)
    port = free_port()
    public = f"http://localhost:{port}/"
    provider = synapse_provider(live_portail, public)
    with SynapseServer(
        python,
        tmp_path_factory.mktemp("synapse-notifications"),
        port,
        oidc_provider=provider,
        sso_client_whitelist=[f"{live_portail.issuer}{linking.CALLBACK}"],
    ) as hs:
        yield hs, live_portail


def _eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def _devices(hs: SynapseServer, admin_token: str, user_id: str) -> set[str]:
    body = hs.api_json("GET", f"/_synapse/admin/v2/users/{quote(user_id, safe='')}/devices", admin_token)
    return {d["device_id"] for d in body["devices"]}


def test_a_member_links_matrix_through_portail_sso_and_a_mention_reaches_the_inbox(
    synapse_with_portail: tuple[SynapseServer, LiveServer],
) -> None:
    hs, portail = synapse_with_portail
    issuer = portail.issuer
    member = create_member(portail.settings, "alice@example.org", "Alice Tremblay")
    bob = hs.register_user("bob", PASSWORD, admin=True, displayname="Bob")
    with portail.db.session() as s:
        instance = Instance(
            slug="matrix",
            name="Matrix En commun",
            software="matrix",
            base_url=hs.public_baseurl.rstrip("/"),
            status="active",
            client_id="synapse",
            provider_identifier="portail",  # the idp_id of synapse_provider's entry
        )
        s.add(instance)
        s.flush()
        instance_id = instance.id or 0

    with browser() as agent:
        log_in(agent, issuer, member.email)
        linked = link_matrix(agent, issuer, hs, instance_id)
        assert linked.status_code == 303, linked.text[:800]
        assert linked.headers["location"] == "/notifications"
        with portail.db.session() as s:
            link = s.exec(select(SourceLink)).one()
            account, device_id = link.account, link.device_id
            assert link.member_id == member.id and "syt_" not in link.secret_sealed
        assert account.startswith("@alice") and account.endswith(":localhost")
        assert device_id in _devices(hs, bob.access_token, account)

        # Bob mentions Alice (the Matrix account Synapse made for her at the SSO login) in a room.
        room_id = hs.api_json("POST", "/_matrix/client/v3/createRoom", bob.access_token, json={"name": "Comité"})[
            "room_id"
        ]
        hs.api_json(
            "POST", f"/_synapse/admin/v1/join/{quote(room_id, safe='')}", bob.access_token, json={"user_id": account}
        )
        hs.api_json(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/txn1",
            bob.access_token,
            json={
                "msgtype": "m.text",
                "body": "Alice: peux-tu relire le procès-verbal ?",
                "m.mentions": {"user_ids": [account]},
            },
        )

        def mention_listed() -> Any:
            data = agent.get(f"{issuer}/api/v1/me/notifications").json()
            return [n for n in data["notifications"] if "procès-verbal" in n["body"]]

        found = _eventually(mention_listed)
        assert found, "the mention never reached the inbox"
        assert found[0]["type"] == "mention"
        assert found[0]["tool"]["name"] == "Matrix En commun"
        assert found[0]["title"] == "@bob:localhost"
        assert found[0]["link"].startswith("https://matrix.to/#/")
        assert "procès-verbal" in agent.get(f"{issuer}/notifications").text

        # Reading it in Portail sends a private read receipt: Synapse now counts it as read.
        with portail.db.session() as s:
            token = unseal(portail.settings.secret_key, s.exec(select(SourceLink)).one().secret_sealed)

        def read_at_synapse() -> bool:
            listed = hs.api_json("GET", "/_matrix/client/v3/notifications", token)["notifications"]
            [entry] = [n for n in listed if "procès-verbal" in n["event"]["content"].get("body", "")]
            return bool(entry["read"])

        assert read_at_synapse() is False
        inbox_page = agent.get(f"{issuer}/notifications")
        answer = agent.post(
            f"{issuer}/notifications/{found[0]['id']}/read", data={"csrf_token": csrf_from(inbox_page.text)}
        )
        assert answer.status_code == 303
        assert read_at_synapse() is True
        # Private: Bob's sync of the room shows no read receipt of Alice's.
        room = hs.api_json("GET", "/_matrix/client/v3/sync", bob.access_token, params={"timeout": 0})["rooms"]["join"][
            room_id
        ]
        receipts = [e for e in room.get("ephemeral", {}).get("events", []) if e.get("type") == "m.receipt"]
        assert account not in str(receipts)

        # Unlinking logs Portail's device out of Synapse.
        prefs = agent.get(f"{issuer}/notifications/preferences")
        answer = agent.post(f"{issuer}/notifications/unlink/{instance_id}", data={"csrf_token": csrf_from(prefs.text)})
        assert answer.status_code == 303
        assert device_id not in _devices(hs, bob.access_token, account)
        with portail.db.session() as s:
            assert s.exec(select(SourceLink)).first() is None
