"""A Discourse forum's notification webhook (``POST /api/v1/notifications/discourse/{slug}``): signed
with the per-instance secret Portail derives, replays refused, delivered to linked members, and the
forum no longer pulled once its webhook works. ``tests/fakes/discourse.py`` posts exactly what
Discourse's ``Jobs::EmitWebHookEvent`` posts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.db import Database
from portail.federation import provisioning, snippets
from portail.federation.models import Instance
from portail.notifications.models import SourceLink, SourceState
from tests.conftest import BASE_URL, csrf_from, login
from tests.fakes.discourse import FakeDiscourse, WebHookDelivery
from tests.fakes.server import serve

HOOK = f"{BASE_URL}/api/v1/notifications/discourse/forum"


@pytest.fixture
def forum(app: Starlette) -> Iterator[tuple[FakeDiscourse, Instance]]:
    fake = FakeDiscourse()
    with serve(fake.app()) as base_url:
        db: Database = app.state.db
        with db.session() as session:
            instance = Instance(
                slug="forum", name="Forum En commun", software="discourse", base_url=base_url, status="active"
            )
            session.add(instance)
            session.flush()
        fake.base_url = base_url
        fake.web_hook_url = HOOK
        fake.web_hook_secret = provisioning.discourse_webhook_secret(app.state.settings.secret_key, instance)
        yield fake, instance


def _link(client: TestClient, fake: FakeDiscourse, instance: Instance, username: str = "alice") -> None:
    """The member pastes a User API key; a first pull tells Portail their Discourse user id."""
    fake.keys[f"key-{username}"] = username
    login(client)
    page = client.get("/notifications/preferences")
    answer = client.post(
        f"/notifications/link/discourse/{instance.id}",
        data={"csrf_token": csrf_from(page.text), "api_key": f"key-{username}", "username": username},
    )
    assert answer.status_code == 303
    fake.notify(username, "Bienvenue")
    assert [n["title"] for n in client.get("/api/v1/me/notifications").json()["notifications"]] == ["Bienvenue"]


def _titles(client: TestClient) -> list[str]:
    return [n["title"] for n in client.get("/api/v1/me/notifications").json()["notifications"]]


def _stale(app: Starlette) -> None:
    db: Database = app.state.db
    with db.session() as session:
        for state in session.exec(select(SourceState)):
            state.fetched_at = None
            session.add(state)


def test_a_signed_webhook_delivers_to_the_linked_member_and_the_forum_is_no_longer_pulled(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, instance = forum
    _link(client, fake, instance)
    db: Database = app.state.db
    with db.session() as session:
        assert session.exec(select(SourceLink)).one().remote_id == str(fake.user_id("alice"))
    answer = fake.notify_by_web_hook("alice", "Budget participatif", client)
    assert answer.status_code == 200 and answer.json() == {"delivered": 1}
    assert "Budget participatif" in _titles(client)
    aggregator = app.state.notifications.aggregator
    pulls = aggregator.pulls["discourse"]
    fake.notify("alice", "Seulement par pull")
    _stale(app)
    assert "Seulement par pull" not in _titles(client)  # the webhook is live: no more pulls
    assert aggregator.pulls["discourse"] == pulls


def test_a_replayed_webhook_event_is_refused(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, instance = forum
    _link(client, fake, instance)
    fake.notify("alice", "Assemblée")
    request = fake.web_hook_request("notification", fake.notifications["alice"][0], event_id=41)
    assert fake.emit(request, client).status_code == 200
    again = fake.emit(fake.web_hook_request("notification", fake.notifications["alice"][0], event_id=41), client)
    assert again.status_code == 409 and again.json()["error"] == "replayed"
    assert _titles(client).count("Assemblée") == 1


def test_a_forged_or_missing_signature_is_refused(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, instance = forum
    _link(client, fake, instance)
    fake.web_hook_secret = "not-the-secret"
    forged = fake.notify_by_web_hook("alice", "Faux", client)
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_signature"
    fake.web_hook_secret = ""
    assert fake.notify_by_web_hook("alice", "Sans signature", client).status_code == 401
    assert "Faux" not in _titles(client) and "Sans signature" not in _titles(client)


def test_a_body_changed_after_signing_is_refused(
    client: TestClient, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, instance = forum
    _link(client, fake, instance)
    fake.notify("alice", "Original")
    request = fake.web_hook_request("notification", fake.notifications["alice"][0])
    tampered = WebHookDelivery(request.url, request.headers, request.body.replace(b"Original", b"Modifie"))
    assert fake.emit(tampered, client).status_code == 401


def test_a_ping_is_answered_and_delivers_nothing(
    client: TestClient, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, _instance = forum
    answer = fake.emit(fake.web_hook_request("ping", None), client)
    assert answer.status_code == 200 and answer.json() == {"delivered": 0, "ignored": "ping"}


def test_a_notification_for_an_unlinked_discourse_user_delivers_nothing(
    client: TestClient, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, _instance = forum
    answer = fake.notify_by_web_hook("bruno", "Pour Bruno", client)
    assert answer.status_code == 200 and answer.json() == {"delivered": 0}


def test_a_webhook_for_an_unknown_or_non_discourse_instance_is_404(
    client: TestClient, app: Starlette, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, _instance = forum
    fake.web_hook_url = f"{BASE_URL}/api/v1/notifications/discourse/inconnu"
    answer = fake.emit(fake.web_hook_request("ping", None), client)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_a_flooding_forum_is_rate_limited(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, Instance]
) -> None:
    fake, instance = forum
    _link(client, fake, instance)
    limiter = app.state.notifications.limiter
    limiter.settings = app.state.settings.replace(notification_push_per_minute=2)
    limiter.clock = lambda: 60.0 * 2_000_000 + 1
    statuses = [fake.notify_by_web_hook("alice", f"Message {n}", client).status_code for n in range(3)]
    assert statuses == [200, 200, 429]


def test_the_discourse_snippet_shows_how_to_create_the_webhook(forum: tuple[FakeDiscourse, Instance]) -> None:
    fake, instance = forum
    found = snippets.for_instance("https://portail.example", instance, "forum", None, webhook_secret="s3cr3t")
    [hook] = [s for s in found if "webhook" in s.title]
    assert "Payload URL = https://portail.example/api/v1/notifications/discourse/forum" in hook.text
    assert "Secret = s3cr3t" in hook.text and "Content Type = application/json" in hook.text
    assert "notification_created" in hook.text and f"{fake.base_url}/admin/api/web_hooks/new" in hook.text
