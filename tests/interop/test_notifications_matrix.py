"""A real Synapse feeds Portail's inbox: another user mentions the member in a room, and the
mention appears in the member's inbox page, then live through the JSON API.

Linking: the full SSO path (Synapse logging in through Portail's /authorize) needs the provider's
authorization endpoint, which is not on main yet. The test therefore obtains a genuine ``loginToken``
from Synapse itself (``POST /_matrix/client/v1/login/get_token``, MSC3882, enabled with
``login_via_existing_session``) and delivers it to Portail's real callback
(``/notifications/link/matrix/callback?state=…&loginToken=…``) exactly as Synapse's SSO redirect
would; Portail then does the real ``m.login.token`` exchange for its own device. Unlinking logs that
device out (checked with ``whoami``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portail.app import create_app
from portail.db import Database
from portail.federation.models import Instance
from portail.notifications import linking
from portail.notifications.models import SourceLink
from tests.conftest import BASE_URL, create_member, csrf_from, login, make_settings
from tests.interop.synapse_harness import SynapseServer, ensure_synapse_venv

pytestmark = pytest.mark.interop

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    python = ensure_synapse_venv(PROJECT_ROOT)
    extra = {"login_via_existing_session": {"enabled": True, "require_ui_auth": False, "token_timeout": "5m"}}
    with SynapseServer(
        python,
        tmp_path_factory.mktemp("synapse-notifications"),
        sso_client_whitelist=[f"{BASE_URL}{linking.CALLBACK}"],
        extra_config=extra,
    ) as server:
        yield server


def _eventually(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_a_mention_in_a_matrix_room_appears_in_the_portail_inbox(
    synapse: SynapseServer, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url, notification_refresh_seconds=0, inbox_budget_seconds=5.0)
    alice_mx = synapse.register_user("alice", PASSWORD, displayname="Alice")
    bob_mx = synapse.register_user("bob", PASSWORD, displayname="Bob")
    create_member(settings)
    app = create_app(settings, migrate=False)
    db: Database = app.state.db
    with db.session() as session:
        instance = Instance(
            slug="matrix", name="Matrix En commun", software="matrix", base_url=synapse.base_url, status="active"
        )
        session.add(instance)
        session.flush()
        instance_id = instance.id or 0

    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        login(client)
        page = client.get("/notifications/preferences")
        assert "Lier mon compte Matrix" in page.text
        start = client.post(f"/notifications/link/matrix/{instance_id}", data={"csrf_token": csrf_from(page.text)})
        assert start.status_code == 303
        sso = urlsplit(start.headers["location"])
        assert sso.path == "/_matrix/client/v3/login/sso/redirect/oidc-portail"
        callback = parse_qs(sso.query)["redirectUrl"][0]
        assert callback.startswith(f"{BASE_URL}{linking.CALLBACK}?state=")

        # What Synapse's SSO redirect delivers: a single-use login token for Alice's account.
        login_token = synapse.api_json("POST", "/_matrix/client/v1/login/get_token", alice_mx.access_token, json={})[
            "login_token"
        ]
        linked = client.get(callback.removeprefix(BASE_URL) + f"&loginToken={login_token}")
        assert linked.status_code == 303, linked.text
        with db.session() as session:
            link = session.exec(select(SourceLink)).one()
            device_id = link.device_id
            assert link.account == "@alice:localhost" and "syt_" not in link.secret_sealed

        # Bob mentions Alice in a room they share.
        room = synapse.api_json("POST", "/_matrix/client/v3/createRoom", bob_mx.access_token, json={"name": "Comité"})
        room_id = room["room_id"]
        synapse.api_json(
            "POST",
            f"/_matrix/client/v3/rooms/{room_id}/invite",
            bob_mx.access_token,
            json={"user_id": alice_mx.user_id},
        )
        synapse.api_json("POST", f"/_matrix/client/v3/join/{room_id}", alice_mx.access_token, json={})
        synapse.api_json(
            "PUT",
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/txn1",
            bob_mx.access_token,
            json={
                "msgtype": "m.text",
                "body": "Alice: peux-tu relire le procès-verbal ?",
                "m.mentions": {"user_ids": [alice_mx.user_id]},
            },
        )

        def mention_listed() -> Any:
            data = client.get("/api/v1/me/notifications").json()
            return [n for n in data["notifications"] if "procès-verbal" in n["body"]]

        found = _eventually(mention_listed)
        assert found, "the mention never reached the inbox"
        assert found[0]["type"] == "mention"
        assert found[0]["tool"]["name"] == "Matrix En commun"
        assert found[0]["title"] == "@bob:localhost"
        assert found[0]["link"].startswith("https://matrix.to/#/")
        inbox_page = client.get("/notifications")
        assert "procès-verbal" in inbox_page.text

        # Unlinking logs Portail's device out of Synapse.
        devices = synapse.api_json("GET", "/_matrix/client/v3/devices", alice_mx.access_token)["devices"]
        assert device_id in {d["device_id"] for d in devices}
        prefs = client.get("/notifications/preferences")
        client.post(f"/notifications/unlink/{instance_id}", data={"csrf_token": csrf_from(prefs.text)})
        devices = synapse.api_json("GET", "/_matrix/client/v3/devices", alice_mx.access_token)["devices"]
        assert device_id not in {d["device_id"] for d in devices}
