"""The member's inbox through HTTP: pages and JSON API, filters, read/dismiss, preferences, badge,
digests with their one-click unsubscribe, retention."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database, utcnow
from portail.notifications import digests, inbox
from tests.conftest import csrf_from, login, mail_text, outbox
from tests.federation_factories import add_instance, add_membership, add_organization
from tests.integration.notifications.conftest import Pusher, make_pusher


def _deliver(app: Starlette, member: Member, pusher: Pusher, ident: str, **extra: Any) -> int:
    db: Database = app.state.db
    with db.session() as session:
        [row] = inbox.deliver(
            session,
            [
                {
                    "member_id": member.id,
                    "instance_id": pusher.instance.id,
                    "external_id": ident,
                    "title": ident,
                    **extra,
                }
            ],
        )
        return row.id


def test_the_inbox_needs_a_login(client: TestClient) -> None:
    assert client.get("/notifications").status_code == 303
    assert client.get("/api/v1/me/notifications").status_code == 401
    assert client.get("/api/v1/me/notifications").json()["error"] == "unauthorized"


def test_filter_by_tool_and_type_mark_read_and_mark_all_read(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    praxis = make_pusher(app, "praxis", "https://praxis.example")
    first = _deliver(app, member, pusher, "reply-1", kind="reply")
    _deliver(app, member, pusher, "mention-1", kind="mention")
    _deliver(app, member, praxis, "note-1", kind="post")
    login(client)
    page = client.get("/notifications")
    assert page.status_code == 200
    assert 'class="badge" data-unread>3<' in page.text  # the navigation's badge
    only_praxis = client.get(f"/notifications?tool={praxis.instance.id}").text
    assert "note-1" in only_praxis and "reply-1" not in only_praxis
    only_mentions = client.get("/api/v1/me/notifications?type=mention").json()["notifications"]
    assert [n["title"] for n in only_mentions] == ["mention-1"]

    csrf = csrf_from(page.text)
    assert client.post(f"/notifications/{first}/read", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/api/v1/me/notifications/unread").json() == {"unread": 2}
    unread = client.get("/api/v1/me/notifications?unread=1").json()["notifications"]
    assert {n["title"] for n in unread} == {"mention-1", "note-1"}
    assert client.post("/notifications/read-all", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/api/v1/me/notifications/unread").json() == {"unread": 0}


def test_forms_without_csrf_are_refused(client: TestClient, app: Starlette, member: Member, pusher: Pusher) -> None:
    ident = _deliver(app, member, pusher, "x")
    login(client)
    assert client.post(f"/notifications/{ident}/dismiss", data={}).status_code == 400
    assert client.get("/api/v1/me/notifications/unread").json() == {"unread": 1}


def test_json_mutations_need_json_and_dismiss_hides_the_notification(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    ident = _deliver(app, member, pusher, "to-dismiss")
    login(client)
    assert client.post(f"/api/v1/me/notifications/{ident}/dismiss", data={"a": "b"}).status_code == 415
    response = client.post(f"/api/v1/me/notifications/{ident}/dismiss", json={})
    assert response.json() == {"dismissed": True, "dismissed_at_source": False}
    assert client.get("/api/v1/me/notifications").json()["notifications"] == []
    assert client.post("/api/v1/me/notifications/999999/read", json={}).status_code == 404


def test_members_never_see_or_touch_each_other_s_notifications(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher, settings: Settings
) -> None:
    from tests.conftest import create_member

    bob = create_member(settings, "bob@example.org", "Bob")
    bobs = _deliver(app, bob, pusher, "pour-bob")
    login(client)
    assert client.get("/api/v1/me/notifications").json()["notifications"] == []
    assert client.post(f"/api/v1/me/notifications/{bobs}/dismiss", json={}).status_code == 404
    page = client.get("/notifications")
    assert client.post(f"/notifications/{bobs}/dismiss", data={"csrf_token": csrf_from(page.text)}).status_code == 404


def test_preferences_turn_a_tool_off_and_choose_a_digest(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher
) -> None:
    login(client)
    page = client.get("/notifications/preferences")
    assert page.status_code == 200 and "Passerelles" in page.text
    saved = client.post(
        f"/notifications/preferences/{pusher.instance.id}",
        data={"csrf_token": csrf_from(page.text), "digest": "weekly"},
    )
    assert saved.status_code == 303
    prefs = client.get("/api/v1/me/notifications/preferences").json()["preferences"]
    assert prefs == [{"tool": pusher.instance.id, "enabled": False, "digest": "weekly"}]
    put = client.put(
        "/api/v1/me/notifications/preferences", json={"tool": pusher.instance.id, "enabled": True, "digest": "daily"}
    )
    assert put.json()["preferences"] == [{"tool": pusher.instance.id, "enabled": True, "digest": "daily"}]
    assert client.put("/api/v1/me/notifications/preferences", json={"tool": "x"}).status_code == 400


def test_a_daily_digest_is_mailed_once_and_its_link_unsubscribes_in_one_click(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher, settings: Settings
) -> None:
    db: Database = app.state.db
    with db.session() as session:
        inbox.set_preference(session, member.id or 0, pusher.instance.id or 0, enabled=True, digest="daily")
    _deliver(app, member, pusher, "digest-me", body="Un résumé")
    assert db.call(digests.send_due, settings, "daily") == 1
    assert db.call(digests.send_due, settings, "daily") == 0  # not due again before a day
    [message] = outbox(settings)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail_text(message)
    assert "digest-me" in text and "Un résumé" in text
    link = message["List-Unsubscribe"].strip("<>")
    path = link.removeprefix(settings.issuer)
    assert client.get(path).status_code == 200  # GET only shows the button
    with db.session() as session:
        assert inbox.preferences(session, member.id or 0)[pusher.instance.id or 0].digest == "daily"
    assert client.post(path, content=b"List-Unsubscribe=One-Click").status_code == 200  # RFC 8058
    with db.session() as session:
        assert inbox.preferences(session, member.id or 0)[pusher.instance.id or 0].digest == "none"
    assert client.get(path[:-3] + "xyz").status_code == 400


def test_digests_are_marked_sent_and_committed_before_the_mail_goes_out(
    app: Starlette, member: Member, pusher: Pusher, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No transaction stays open while mail is sent (a slow SMTP server must not hold the database)."""
    db: Database = app.state.db
    with db.session() as session:
        inbox.set_preference(session, member.id or 0, pusher.instance.id or 0, enabled=True, digest="daily")
    _deliver(app, member, pusher, "digest-me")
    seen_at_delivery: list[object] = []

    def deliver(_settings: Settings, _message: object) -> None:
        other = Database(settings)  # another connection sees only what is committed
        try:
            with other.session() as session:
                prefs = inbox.preferences(session, member.id or 0)
                seen_at_delivery.append(prefs[pusher.instance.id or 0].last_digest_at)
        finally:
            other.dispose()

    monkeypatch.setattr(digests.mail, "deliver", deliver)
    assert db.call(digests.send_due, settings, "daily") == 1
    assert len(seen_at_delivery) == 1 and seen_at_delivery[0] is not None


def test_notifications_past_the_retention_are_purged(app: Starlette, member: Member, pusher: Pusher) -> None:
    old = _deliver(app, member, pusher, "old", received_at=utcnow() - dt.timedelta(days=91))
    recent = _deliver(app, member, pusher, "recent")
    db: Database = app.state.db
    assert db.call(inbox.purge, 90) == 1
    with db.session() as session:
        assert inbox.get(session, member.id or 0, old) is None
        assert inbox.get(session, member.id or 0, recent) is not None


def test_preferences_list_the_members_tools_not_every_instance_of_the_federation(
    client: TestClient, app: Starlette, member: Member, pusher: Pusher, settings: Settings
) -> None:
    add_organization(settings, "mrc-exemple", "MRC Exemple", kind="territory", region="05")
    add_instance(settings, "nuage-mrc", scope="territorial", organization="mrc-exemple", software="nextcloud")
    login(client)
    page = client.get("/notifications/preferences")
    assert "Passerelles" in page.text  # a central instance
    assert "Nuage Mrc" not in page.text  # serves an organization the member is not part of
    add_membership(settings, "mrc-exemple", member.email)
    assert "Nuage Mrc" in client.get("/notifications/preferences").text
