"""Portail's Matrix push gateway (Push Gateway API v1, ``POST /_matrix/push/v1/notify``): known
pushkeys deliver, unknown ones are answered in ``rejected``, calls from elsewhere than the linked
homeserver are refused, each homeserver is rate-limited, and a refused registration is said on the
preferences page. The payloads are the ones Synapse's ``push/httppusher.py`` sends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.db import Database
from portail.federation.models import Instance
from portail.notifications import gateway, inbox
from portail.notifications.models import MatrixPusher, NotificationPreference, SourceLink
from tests.conftest import BASE_URL, login

URL = gateway.NOTIFY_PATH
PUSHKEY = "k" * 43


@pytest.fixture
def homeserver(app: Starlette) -> Instance:
    db: Database = app.state.db
    with db.session() as session:
        instance = Instance(
            slug="matrix", name="Matrix", software="matrix", base_url="http://localhost:8448", status="active"
        )
        session.add(instance)
        session.flush()
        return instance


def _link(app: Starlette, member: Member, instance: Instance, *, status: str = "active") -> None:
    db: Database = app.state.db
    with db.session() as session:
        session.add(
            SourceLink(
                member_id=member.id or 0,
                instance_id=instance.id or 0,
                kind="matrix",
                account="@alice:localhost",
                secret_sealed="x",
            )
        )
        session.add(
            MatrixPusher(
                member_id=member.id or 0,
                instance_id=instance.id or 0,
                pushkey_hash=gateway.hash_pushkey(PUSHKEY),
                status=status,
                error="" if status == "active" else "unexpected status 400",
            )
        )


def _unread(app: Starlette, member: Member) -> int:
    db: Database = app.state.db
    with db.session() as session:
        return inbox.unread_count(session, member.id or 0)


@pytest.fixture
def from_homeserver(app: Starlette) -> Iterator[TestClient]:
    """A client calling from 127.0.0.1, one of the addresses of ``localhost`` (the homeserver's host)."""
    with TestClient(app, base_url=BASE_URL, follow_redirects=False, client=("127.0.0.1", 40000)) as test_client:
        yield test_client


def _synapse_push(pushkey: str = PUSHKEY, *, highlight: bool = True, event_id: str = "$ev1") -> dict[str, Any]:
    """What Synapse's HttpPusher.dispatch_push_event posts without ``data.format``."""
    return {
        "notification": {
            "id": event_id,
            "event_id": event_id,
            "room_id": "!room:localhost",
            "type": "m.room.message",
            "sender": "@bob:localhost",
            "prio": "high",
            "counts": {"unread": 1},
            "content": {"msgtype": "m.text", "body": "Alice: le procès-verbal ?"},
            "sender_display_name": "Bob",
            "room_name": "Comité",
            "devices": [
                {
                    "app_id": gateway.APP_ID,
                    "pushkey": pushkey,
                    "pushkey_ts": 1700000000,
                    "data": {},
                    "tweaks": {"highlight": True, "sound": "default"} if highlight else {},
                }
            ],
        }
    }


def test_a_push_from_the_linked_homeserver_lands_in_the_inbox_once(
    from_homeserver: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver)
    first = from_homeserver.post(URL, json=_synapse_push())
    again = from_homeserver.post(URL, json=_synapse_push())  # the homeserver retries: still one row
    assert first.status_code == 200 and first.json() == {"rejected": []}
    assert again.json() == {"rejected": []}
    login(from_homeserver)
    [row] = from_homeserver.get("/api/v1/me/notifications").json()["notifications"]
    assert row["type"] == "mention" and row["title"] == "@bob:localhost"
    assert row["body"] == "Alice: le procès-verbal ?"
    assert row["link"] == "https://matrix.to/#/!room:localhost/$ev1"
    db: Database = app.state.db
    with db.session() as session:
        pusher = session.get(MatrixPusher, 1)
        assert pusher is not None and pusher.last_push_at is not None


def test_push_gateway_answers_unknown_pushkeys_in_rejected(
    from_homeserver: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    """Push Gateway API: pushkeys the gateway no longer knows are listed in ``rejected``."""
    _link(app, member, homeserver)
    response = from_homeserver.post(URL, json=_synapse_push("unknown-pushkey"))
    assert response.status_code == 200
    assert response.json() == {"rejected": ["unknown-pushkey"]}
    assert _unread(app, member) == 0


def test_a_badge_only_push_is_accepted_and_delivers_nothing(
    from_homeserver: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver)
    badge = {"notification": {"id": "", "type": None, "sender": "", "counts": {"unread": 0}}}
    badge["notification"]["devices"] = _synapse_push()["notification"]["devices"]
    response = from_homeserver.post(URL, json=badge)
    assert response.json() == {"rejected": []}
    assert _unread(app, member) == 0


def test_a_push_from_another_address_is_refused(
    client: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver)
    response = client.post(URL, json=_synapse_push())  # from "testclient", not the homeserver's address
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert _unread(app, member) == 0


def test_a_refused_pusher_s_pushkey_is_rejected(
    from_homeserver: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver, status="refused")
    assert from_homeserver.post(URL, json=_synapse_push()).json() == {"rejected": [PUSHKEY]}


def test_a_member_who_muted_the_tool_gets_nothing_pushed(
    from_homeserver: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver)
    db: Database = app.state.db
    with db.session() as session:
        session.add(NotificationPreference(member_id=member.id or 0, instance_id=homeserver.id or 0, enabled=False))
    assert from_homeserver.post(URL, json=_synapse_push()).json() == {"rejected": []}
    assert _unread(app, member) == 0


@pytest.mark.parametrize(
    "body",
    [{"notification": {}}, {"notification": {"devices": [{"pushkey": 3}]}}, [], {"devices": []}],
)
def test_a_malformed_notify_call_is_a_json_400(from_homeserver: TestClient, body: Any) -> None:
    response = from_homeserver.post(URL, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_notify_call_that_is_not_json_is_refused(from_homeserver: TestClient) -> None:
    response = from_homeserver.post(URL, content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert from_homeserver.post(URL, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_a_flooding_homeserver_is_rate_limited(
    from_homeserver: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver)
    limiter = app.state.notifications.limiter
    limiter.settings = app.state.settings.replace(notification_push_per_minute=3)
    limiter.clock = lambda: 60.0 * 1_000_000 + 1  # one minute for the whole test
    for number in range(3):
        assert from_homeserver.post(URL, json=_synapse_push(event_id=f"$e{number}")).status_code == 200
    refused = from_homeserver.post(URL, json=_synapse_push(event_id="$last"))
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1


def test_the_preferences_page_says_whether_the_homeserver_pushes(
    client: TestClient, app: Starlette, member: Member, homeserver: Instance
) -> None:
    _link(app, member, homeserver, status="refused")
    login(client)
    page = client.get("/notifications/preferences").text
    assert "a refusé d’envoyer vos notifications à Portail" in page
    db: Database = app.state.db
    with db.session() as session:
        row = session.get(MatrixPusher, 1)
        assert row is not None
        row.status = "active"
        session.add(row)
    assert "Portail attend la première notification" in client.get("/notifications/preferences").text
    with db.session() as session:
        row = session.get(MatrixPusher, 1)
        assert row is not None
        row.last_push_at = row.created_at
        session.add(row)
    assert "envoie vos notifications directement à Portail" in client.get("/notifications/preferences").text
