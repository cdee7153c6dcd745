"""Linking Discourse with its User API key flow (meta.discourse.org/t/48536): Portail → Discourse's
approval page → Discourse's encrypted ``payload`` back to Portail → the key stored sealed and used.

Discourse cannot run here: ``tests/fakes/discourse.py`` is a faithful fake of that flow (RSA PKCS #1 v1.5,
Ruby's Base64 with newlines, ``allowed_user_api_auth_redirects``), served over HTTP by uvicorn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.federation.models import Instance
from portail.notifications import user_api_keys
from portail.notifications.models import DiscourseKeyRequest, SourceLink, SourceState
from portail.notifications.sealing import unseal
from tests.conftest import BASE_URL, create_member, csrf_from, login
from tests.fakes.discourse import FakeDiscourse
from tests.fakes.server import serve
from tests.interop.forms import forms_in

CALLBACK = f"{BASE_URL}{user_api_keys.CALLBACK}"


@pytest.fixture
def forum() -> Iterator[tuple[FakeDiscourse, str]]:
    fake = FakeDiscourse(allowed_user_api_auth_redirects=[f"{CALLBACK}*"])
    with serve(fake.app()) as base_url:
        yield fake, base_url


@pytest.fixture
def instance_id(app: Starlette, forum: tuple[FakeDiscourse, str]) -> int:
    db: Database = app.state.db
    with db.session() as session:
        instance = Instance(
            slug="forum", name="Forum En commun", software="discourse", base_url=forum[1], status="active"
        )
        session.add(instance)
        session.flush()
        return instance.id or 0


def _start(client: TestClient, instance_id: int, *, linked: bool = False) -> str:
    """The member clicks "Autoriser Portail sur Discourse" (shown in French while not ``linked``); returns
    the Discourse URL Portail sends them to."""
    page = client.get("/notifications/preferences")
    if not linked:
        assert "Autoriser Portail sur Discourse" in page.text and "Ou coller une clé" in page.text
    answer = client.post(
        f"/notifications/link/discourse/{instance_id}/authorize", data={"csrf_token": csrf_from(page.text)}
    )
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def _approve(fake: FakeDiscourse, url: str, username: str = "alice") -> str:
    """The member, logged in to Discourse, approves; returns where Discourse redirects the browser."""
    with httpx.Client(cookies={"_t": fake.log_in(username)}, timeout=10) as discourse:
        page = discourse.get(url)
        assert page.status_code == 200, page.text
        [form] = forms_in(page.text)
        answer = discourse.post(str(page.url.join(form.action)), data=form.fields)
        assert answer.status_code == 302, answer.text
        return str(answer.headers["location"])


def _stale(app: Starlette) -> None:
    """Make the member's pulled sources due again (instead of waiting ``notification_refresh_seconds``)."""
    db: Database = app.state.db
    with db.session() as session:
        for state in session.exec(select(SourceState).where(col(SourceState.member_id).is_not(None))):
            state.fetched_at = None
            session.add(state)


def _callback(client: TestClient, location: str, **headers: str) -> Any:
    assert location.startswith(f"{CALLBACK}?state="), location
    return client.get(location.removeprefix(BASE_URL), headers=headers)


def test_a_member_links_discourse_through_its_user_api_key_flow_and_gets_its_notifications(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    fake, base_url = forum
    login(client)
    url = _start(client, instance_id)
    target = urlsplit(url)
    assert f"{target.scheme}://{target.netloc}" == base_url and target.path == "/user-api-key/new"
    params = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert params["scopes"] == "notifications"
    assert params["application_name"] == "Portail En commun"
    assert params["client_id"] == "portail-localhost:8000"
    assert params["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert len(params["nonce"]) >= 16
    assert params["auth_redirect"].startswith(f"{CALLBACK}?state=")

    back = _approve(fake, url)
    assert "payload=" in back
    linked = _callback(client, back)
    assert linked.status_code == 303, linked.text
    assert linked.headers["location"] == "/notifications/preferences"
    [key] = fake.keys
    db: Database = app.state.db
    with db.session() as session:
        link = session.exec(select(SourceLink)).one()
        assert (link.member_id, link.instance_id, link.kind) == (member.id, instance_id, "discourse")
        assert key not in link.secret_sealed and unseal(app.state.settings.secret_key, link.secret_sealed) == key
        assert session.exec(select(DiscourseKeyRequest)).first() is None  # spent
    assert "Compte Discourse lié." in client.get("/notifications/preferences").text

    first = fake.notify("alice", "Budget participatif 2027")
    data = client.get("/api/v1/me/notifications").json()
    assert [n["title"] for n in data["notifications"]] == ["Budget participatif 2027"]

    # Reading in Portail marks read in Discourse (read_state.py): one, then all.
    inbox_page = client.get("/notifications")
    notification_id = data["notifications"][0]["id"]
    read = client.post(f"/notifications/{notification_id}/read", data={"csrf_token": csrf_from(inbox_page.text)})
    assert read.status_code == 303
    assert [n["read"] for n in fake.notifications["alice"] if n["id"] == first] == [True]
    second, third = fake.notify("alice", "Assemblée"), fake.notify("alice", "Comité")
    fake.notify("bruno", "Autre membre")
    _stale(app)
    assert client.get("/api/v1/me/notifications").json()["unread"] == 2
    inbox_page = client.get("/notifications")
    client.post("/notifications/read-all", data={"csrf_token": csrf_from(inbox_page.text)})
    assert {n["id"]: n["read"] for n in fake.notifications["alice"]} == {first: True, second: True, third: True}
    assert not fake.notifications["bruno"][0]["read"]

    # The callback works once.
    replay = _callback(client, back)
    assert replay.status_code == 400
    assert "déjà utilisée ou expirée" in replay.text

    # Unlinking revokes the key at Discourse.
    page = client.get("/notifications/preferences")
    client.post(f"/notifications/unlink/{instance_id}", data={"csrf_token": csrf_from(page.text)})
    assert fake.revoked == [key] and not fake.keys


def test_linking_again_replaces_the_key_of_the_same_client_at_discourse(
    client: TestClient, member: Member, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    fake, _base_url = forum
    login(client)
    assert _callback(client, _approve(fake, _start(client, instance_id))).status_code == 303
    assert _callback(client, _approve(fake, _start(client, instance_id, linked=True))).status_code == 303
    assert len(fake.keys) == 1


def test_a_payload_that_does_not_decrypt_is_refused_with_a_clear_page(
    client: TestClient, settings: Settings, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    create_member(settings, locale="en")
    login(client)
    for payload in ("not base64 at all!", "QUJD", ""):  # in English: this member chose English
        fresh = parse_qs(urlsplit(_start(client, instance_id, linked=True)).query)["auth_redirect"][0]
        answer = _callback(client, f"{fresh}&{urlencode({'payload': payload})}")
        assert answer.status_code == 400
        assert (
            "Discourse&#39;s answer cannot be read" in answer.text or "Discourse's answer cannot be read" in answer.text
        )


def test_a_payload_with_another_nonce_is_refused(
    client: TestClient, member: Member, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    login(client)
    params = {k: v[0] for k, v in parse_qs(urlsplit(_start(client, instance_id)).query).items()}
    forged = FakeDiscourse.encrypt_payload(params["public_key"], {"key": "k" * 32, "nonce": "autre", "push": False})
    answer = _callback(client, f"{params['auth_redirect']}&{urlencode({'payload': forged})}")
    assert answer.status_code == 400
    assert "ne correspond pas à cette demande" in answer.text


def test_an_expired_or_foreign_state_is_refused(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    fake, _base_url = forum
    settings = app.state.settings
    login(client)
    url = _start(client, instance_id)
    redirect = parse_qs(urlsplit(url).query)["auth_redirect"][0]
    genuine = URLSafeTimedSerializer(settings.secret_key, salt="portail.notifications.discourse-key")
    data = genuine.loads(redirect.split("state=", 1)[1])

    class ElevenMinutesAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 660

    old = URLSafeTimedSerializer(
        settings.secret_key, salt="portail.notifications.discourse-key", signer=ElevenMinutesAgo
    )
    approved = _approve(fake, url)
    payload = parse_qs(urlsplit(approved).query)["payload"][0]
    expired = _callback(client, f"{CALLBACK}?{urlencode({'state': old.dumps(data), 'payload': payload})}")
    assert expired.status_code == 400 and "expirée" in expired.text

    other = create_member(settings, "bruno@example.org", "Bruno Roy")
    foreign = genuine.dumps({**data, "m": other.id})
    answer = _callback(client, f"{CALLBACK}?{urlencode({'state': foreign, 'payload': payload})}")
    assert answer.status_code == 400
    tampered = _callback(client, f"{CALLBACK}?{urlencode({'state': 'x' + redirect[-20:], 'payload': payload})}")
    assert tampered.status_code == 400
    # None of these spent the genuine request, which still links.
    assert _callback(client, approved).status_code == 303


def test_discourse_refuses_an_auth_redirect_its_site_setting_does_not_allow(
    client: TestClient, member: Member, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    fake, _base_url = forum
    fake.allowed_user_api_auth_redirects = ["https://ailleurs.example/*"]
    login(client)
    url = _start(client, instance_id)
    with httpx.Client(cookies={"_t": fake.log_in("alice")}, timeout=10) as discourse:
        page = discourse.get(url)
        [form] = forms_in(page.text)
        assert discourse.post(str(page.url.join(form.action)), data=form.fields).status_code == 403
    assert not fake.keys


def test_the_paste_flow_still_links_a_key(
    client: TestClient, app: Starlette, member: Member, forum: tuple[FakeDiscourse, str], instance_id: int
) -> None:
    login(client)
    page = client.get("/notifications/preferences")
    answer = client.post(
        f"/notifications/link/discourse/{instance_id}",
        data={"csrf_token": csrf_from(page.text), "api_key": "collée", "username": "alice"},
    )
    assert answer.status_code == 303
    db: Database = app.state.db
    with db.session() as session:
        assert session.exec(select(SourceLink)).one().account == "alice"


def test_starting_the_flow_for_an_instance_that_is_not_discourse_is_404(
    client: TestClient, member: Member, instance_id: int
) -> None:
    login(client)
    page = client.get("/notifications/preferences")
    answer = client.post(
        f"/notifications/link/discourse/{instance_id + 99}/authorize", data={"csrf_token": csrf_from(page.text)}
    )
    assert answer.status_code == 404
