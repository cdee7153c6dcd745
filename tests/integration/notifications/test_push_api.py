"""The push API (``POST /api/v1/notifications``): RFC 6750 bearer authentication and scope,
idempotency, batch limits, per-item answers, rate limit, link origin, plain text."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.db import Database
from portail.notifications import inbox
from tests.conftest import create_member, login
from tests.integration.notifications.conftest import Pusher, make_pusher, sub_of

URL = "/api/v1/notifications"


def _push(client: TestClient, token: str, items: list[dict[str, Any]]) -> Any:
    return client.post(URL, json={"notifications": items}, headers={"Authorization": f"Bearer {token}"})


def _item(sub: str, ident: str = "n-1", **extra: Any) -> dict[str, Any]:
    return {"id": ident, "sub": sub, "title": "Nouvelle réponse", "type": "reply", **extra}


def test_a_pushed_notification_lands_in_the_member_s_inbox(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    sub = sub_of(app, member, pusher)
    response = _push(
        client,
        pusher.token(),
        [_item(sub, body="<p>Marie a <b>répondu</b></p><script>x()</script>", link="https://passerelles.example/c/1")],
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"id": "n-1", "status": "accepted"}]
    assert response.json()["accepted"] == 1
    login(client)
    page = client.get("/notifications")
    assert "Nouvelle réponse" in page.text and "Marie a répondu" in page.text
    assert "<b>répondu" not in page.text and "x()" not in page.text
    data = client.get("/api/v1/me/notifications").json()
    assert data["unread"] == 1
    assert data["notifications"][0]["link"] == "https://passerelles.example/c/1"
    assert data["notifications"][0]["tool"]["name"] == "Passerelles"


def test_rfc6750_a_missing_or_bad_token_is_401_with_a_bearer_challenge(client: TestClient, pusher: Pusher) -> None:
    """RFC 6750 §3: the resource server answers 401 with WWW-Authenticate: Bearer."""
    missing = client.post(URL, json={"notifications": []})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = _push(client, "not.a.token", [])
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert bad.json()["error"] == "invalid_token"


def test_rfc6750_a_token_without_the_push_scope_is_403_insufficient_scope(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    """RFC 6750 §3.1: insufficient_scope is answered with 403."""
    response = _push(client, pusher.token(scope="openid"), [_item(sub_of(app, member, pusher))])
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_a_client_that_is_no_instance_cannot_push(client: TestClient, app: Starlette, member: Member) -> None:
    pusher = make_pusher(app, "orphan", "https://orphan.example")
    db: Database = app.state.db
    with db.session() as session:
        instance = session.get(type(pusher.instance), pusher.instance.id)
        assert instance is not None
        instance.status = "suspended"
        session.add(instance)
    response = _push(client, pusher.token(), [_item(sub_of(app, member, pusher))])
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


def test_pushing_the_same_id_twice_is_a_duplicate_and_stored_once(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    sub = sub_of(app, member, pusher)
    first = _push(client, pusher.token(), [_item(sub), _item(sub, "n-2"), _item(sub, "n-2")])
    assert [r["status"] for r in first.json()["results"]] == ["accepted", "accepted", "duplicate"]
    again = _push(client, pusher.token(), [_item(sub), _item(sub, "n-3")])
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "accepted"]
    db: Database = app.state.db
    with db.session() as session:
        assert inbox.unread_count(session, member.id or 0) == 3


def test_each_item_is_answered_on_its_own(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher, settings: Any
) -> None:
    sub = sub_of(app, member, pusher)
    other = create_member(settings, "bob@example.org", "Bob")
    items = [
        _item(sub, "ok"),
        _item("a-sub-this-instance-never-saw", "who"),
        _item(member.public_id, "public-id-is-not-the-pairwise-sub"),
        _item(sub, "bad-link", link="https://evil.example/phish"),
        _item(sub, "bad-link-2", link="javascript:alert(1)"),
        _item(sub, "no-title", title="<br>"),
        _item(sub, "bad-type", type="Not A Type!"),
        _item(sub, "bad-date", created_at="yesterday"),
        "not an object",
        {"id": 5, "sub": sub, "title": "x"},
        _item(sub_of(app, other, pusher), "for-bob"),
    ]
    response = _push(client, pusher.token(), items)
    assert response.status_code == 200
    statuses = [(r["id"], r["status"]) for r in response.json()["results"]]
    assert statuses == [
        ("ok", "accepted"),
        ("who", "unknown_member"),
        ("public-id-is-not-the-pairwise-sub", "unknown_member"),
        ("bad-link", "invalid"),
        ("bad-link-2", "invalid"),
        ("no-title", "invalid"),
        ("bad-type", "invalid"),
        ("bad-date", "invalid"),
        ("", "invalid"),
        ("", "invalid"),
        ("for-bob", "accepted"),
    ]
    assert "origin" in response.json()["results"][3]["error"]
    assert response.json()["accepted"] == 2 and response.json()["invalid"] == 7


def test_one_unreadable_item_is_answered_invalid_with_its_index_and_the_others_go_through(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    """Strings that are not Unicode (an unpaired surrogate), NUL (PostgreSQL cannot store it), deep
    nesting inside one item: that item is ``invalid`` with its index; the batch is not sunk."""
    sub = sub_of(app, member, pusher)
    nested: Any = "x"
    for _ in range(40):
        nested = [nested]
    items = [
        _item(sub, "first"),
        _item(sub, "surrogate-title", title="Bonjour \ud800"),
        _item(sub, "nul-body", body="a\u0000b"),
        _item(sub, "\udfff"),
        {**_item(sub, "deep"), "extra": nested},
        _item("\ud800", "surrogate-sub"),
        _item(sub, "last"),
    ]
    raw = json.dumps({"notifications": items}).encode()  # ensure_ascii: the surrogates travel as \ud800
    response = client.post(
        URL, content=raw, headers={"Authorization": f"Bearer {pusher.token()}", "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "accepted",
    ]
    invalid = [r for r in results if r["status"] == "invalid"]
    assert [r["index"] for r in invalid] == [1, 2, 3, 4, 5]
    assert [r["id"] for r in invalid] == ["surrogate-title", "nul-body", "", "deep", "surrogate-sub"]
    assert "surrogate" in invalid[0]["error"] and "control" in invalid[1]["error"] and "nested" in invalid[3]["error"]
    assert response.json()["accepted"] == 2 and response.json()["invalid"] == 5
    db: Database = app.state.db
    with db.session() as session:
        assert inbox.unread_count(session, member.id or 0) == 2


def test_a_push_body_that_cannot_be_read_at_all_is_refused_whole(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    token = pusher.token()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deep = client.post(URL, content=b'{"notifications": ' + b"[" * 1500 + b"]" * 1500 + b"}", headers=headers)
    assert deep.status_code == 400 and deep.json()["error"] == "invalid_request"
    not_utf8 = client.post(URL, content=b'{"notifications": [{"title": "\xff"}]}', headers=headers)
    assert not_utf8.status_code == 400 and "UTF-8" in not_utf8.json()["error_description"]
    wrong_type = client.post(URL, content=b"{}", headers={"Authorization": f"Bearer {token}"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error"] == "invalid_request"
    huge = client.post(URL, content=b" " * 1_000_001, headers=headers)
    assert huge.status_code == 413 and huge.json()["error"] == "invalid_request"


def test_batches_over_the_limit_and_malformed_bodies_are_refused(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    sub = sub_of(app, member, pusher)
    token = pusher.token()
    too_many = _push(client, token, [_item(sub, f"n{i}") for i in range(101)])
    assert too_many.status_code == 413
    assert too_many.json()["error"] == "batch_too_large"
    empty = _push(client, token, [])
    assert empty.status_code == 400
    not_json = client.post(
        URL, content=b"{oops", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    wrong_shape = client.post(URL, json=[1, 2], headers={"Authorization": f"Bearer {token}"})
    assert wrong_shape.status_code == 400


def test_an_instance_over_its_rate_limit_gets_429_with_retry_after(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    app.state.notifications.limiter.settings = app.state.settings.replace(notification_push_per_minute=5)
    app.state.notifications.limiter.clock = lambda: 1_800_000_010.0  # 10 s into a minute, for the whole test
    sub = sub_of(app, member, pusher)
    token = pusher.token()
    assert _push(client, token, [_item(sub, f"a{i}") for i in range(5)]).status_code == 200
    refused = _push(client, token, [_item(sub, "one-too-many")])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"] == "rate_limited"
    other = make_pusher(app, "praxis", "https://praxis.example")
    assert _push(client, other.token(), [_item(sub_of(app, member, other), "p1")]).status_code == 200


def test_a_member_who_turned_the_instance_off_gets_nothing_and_the_instance_is_not_told(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    db: Database = app.state.db
    with db.session() as session:
        inbox.set_preference(session, member.id or 0, pusher.instance.id or 0, enabled=False, digest="none")
    response = _push(client, pusher.token(), [_item(sub_of(app, member, pusher))])
    assert response.json()["results"] == [{"id": "n-1", "status": "accepted"}]
    with db.session() as session:
        assert inbox.unread_count(session, member.id or 0) == 0
