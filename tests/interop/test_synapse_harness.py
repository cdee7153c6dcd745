"""The Synapse harness against a real homeserver, without any OpenID provider.

Proves that ``synapse_harness`` installs and starts Synapse, that shared-secret registration, password
login and token checks work, and that Synapse computes push notifications (mentions are highlighted),
which is what Portail's Matrix notification source will read through ``GET /_matrix/client/v3/notifications``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.interop.synapse_harness import SynapseServer, ensure_synapse_venv

pytestmark = pytest.mark.interop

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    python = ensure_synapse_venv(PROJECT_ROOT)
    with SynapseServer(python, tmp_path_factory.mktemp("synapse")) as server:
        yield server


def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Retry ``check`` until it returns something truthy (push actions are persisted asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _highlights(actions: list[Any]) -> bool:
    """Whether push ``actions`` carry the highlight tweak (its ``value`` defaults to true)."""
    return any(
        isinstance(action, dict) and action.get("set_tweak") == "highlight" and action.get("value", True)
        for action in actions
    )


def test_registration_login_and_token_checks(synapse: SynapseServer) -> None:
    assert synapse.running
    assert synapse.config["public_baseurl"] == f"http://localhost:{synapse.port}/"
    assert "oidc_providers" not in synapse.config

    flows = {flow["type"] for flow in synapse.api_json("GET", "/_matrix/client/v3/login")["flows"]}
    assert "m.login.password" in flows
    assert "m.login.sso" not in flows  # no OIDC provider configured

    admin = synapse.register_user("root", PASSWORD, admin=True)
    erin = synapse.register_user("erin", PASSWORD)
    assert admin.user_id == "@root:localhost"
    assert erin.user_id == "@erin:localhost"
    assert synapse.whoami(admin.access_token) == 200
    assert synapse.whoami("not-a-token") == 401

    # Open registration is off: only the shared-secret API creates users.
    response = synapse.api("POST", "/_matrix/client/v3/register", json={"username": "mallory", "password": PASSWORD})
    assert response.status_code == 403

    # A wrong shared secret is refused.
    nonce = synapse.api_json("GET", "/_synapse/admin/v1/register")["nonce"]
    bad = {"nonce": nonce, "username": "mallory", "password": PASSWORD, "admin": False, "mac": "00" * 20}
    assert synapse.api("POST", "/_synapse/admin/v1/register", json=bad).status_code == 403

    # Password login, by localpart and by full user id; each login is a new device.
    by_localpart = synapse.login_password("erin", PASSWORD)
    by_user_id = synapse.login_password("@erin:localhost", PASSWORD)
    assert by_localpart.user_id == by_user_id.user_id == erin.user_id
    assert by_localpart.device_id != by_user_id.device_id
    whoami = synapse.api_json("GET", "/_matrix/client/v3/account/whoami", by_localpart.access_token)
    assert whoami["user_id"] == erin.user_id
    assert (
        synapse.api(
            "POST",
            "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "erin"},
                "password": "wrong",
            },
        ).status_code
        == 403
    )

    # Logging out one device kills its token only.
    synapse.api_json("POST", "/_matrix/client/v3/logout", by_localpart.access_token, json={})
    assert synapse.whoami(by_localpart.access_token) == 401
    assert synapse.whoami(by_user_id.access_token) == 200

    # The admin flag took effect: the admin API answers the admin and refuses others.
    path = f"/_synapse/admin/v2/users/{quote(erin.user_id)}"
    assert synapse.api_json("GET", path, admin.access_token)["admin"] is False
    assert synapse.api("GET", path, erin.access_token).status_code == 403


def test_mentions_show_up_in_notifications(synapse: SynapseServer) -> None:
    synapse.register_user("alice", PASSWORD, displayname="Alice Liddell")
    synapse.register_user("bob", PASSWORD, displayname="Bob Builder")
    alice = synapse.login_password("alice", PASSWORD)
    bob = synapse.login_password("bob", PASSWORD)

    room_id = synapse.api_json(
        "POST",
        "/_matrix/client/v3/createRoom",
        alice.access_token,
        json={"preset": "private_chat", "name": "Harness room"},
    )["room_id"]
    synapse.api_json(
        "POST",
        f"/_matrix/client/v3/rooms/{quote(room_id)}/invite",
        alice.access_token,
        json={"user_id": bob.user_id},
    )
    synapse.api_json("POST", f"/_matrix/client/v3/join/{quote(room_id)}", bob.access_token, json={})
    members = synapse.api_json("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members", bob.access_token)
    assert set(members["joined"]) == {alice.user_id, bob.user_id}
    assert members["joined"][bob.user_id]["display_name"] == "Bob Builder"

    def send(txn: str, content: dict[str, Any]) -> str:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}"
        event_id: str = synapse.api_json("PUT", path, alice.access_token, json=content)["event_id"]
        return event_id

    plain = send("t1", {"msgtype": "m.text", "body": "Good morning, everyone."})
    by_name = send("t2", {"msgtype": "m.text", "body": "Bob Builder, can we fix it?"})
    by_id = send(
        "t3",
        {
            "msgtype": "m.text",
            "body": f"{bob.user_id}: yes we can",
            "m.mentions": {"user_ids": [bob.user_id]},
        },
    )

    def notified(token: str, **params: str | int) -> list[dict[str, Any]]:
        body = synapse.api_json("GET", "/_matrix/client/v3/notifications", token, params=params)
        notifications: list[dict[str, Any]] = body["notifications"]
        return notifications

    highlights = _eventually(lambda: len(notified(bob.access_token, only="highlight")) >= 2 or None)
    assert highlights, "Bob's mentions never showed up in /notifications"

    by_event = {n["event"]["event_id"]: n for n in notified(bob.access_token)}
    # In a two-member room every message notifies (.m.rule.room_one_to_one); only mentions highlight.
    assert {plain, by_name, by_id} <= set(by_event)
    for event_id in (by_name, by_id):
        note = by_event[event_id]
        assert note["room_id"] == room_id
        assert note["read"] is False
        assert note["event"]["sender"] == alice.user_id
        assert "notify" in note["actions"]
        assert _highlights(note["actions"])
    assert "notify" in by_event[plain]["actions"]
    assert not _highlights(by_event[plain]["actions"])
    assert {n["event"]["event_id"] for n in notified(bob.access_token, only="highlight")} == {by_name, by_id}
    assert by_event[by_name]["event"]["content"]["body"] == "Bob Builder, can we fix it?"

    # The sender is never notified of her own messages.
    assert notified(alice.access_token) == []

    # A read receipt on the last event marks them read.
    synapse.api_json(
        "POST",
        f"/_matrix/client/v3/rooms/{quote(room_id)}/receipt/m.read/{quote(by_id)}",
        bob.access_token,
        json={},
    )
    assert _eventually(lambda: all(n["read"] for n in notified(bob.access_token)))
