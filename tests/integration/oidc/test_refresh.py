"""Refresh tokens: rotation on every use, reuse detection, the grace window, offline access
(RFC 6749 §6, RFC 9700 §4.14.2, OIDC Core §11-12)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import AuditEvent, Member
from portail.config import Settings
from portail.oidc.models import Grant, RefreshToken
from tests.conftest import csrf_from
from tests.oidc_flow import Flow, change, decode, make_client, rows


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_each_refresh_rotates_the_refresh_token(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    id_token = decode(client, body["id_token"])
    assert "nonce" not in id_token
    assert id_token["auth_time"] == decode(client, first["id_token"])["auth_time"]
    third = flow.refresh(body["refresh_token"])
    assert third.status_code == 200
    assert len({g.id for g in rows(settings, Grant)}) == 1


def test_reusing_a_rotated_refresh_token_after_the_grace_window_revokes_the_grant(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json()

    def age(session: Session) -> None:
        for row in session.exec(select(RefreshToken).where(RefreshToken.rotated_at != None)):  # noqa: E711
            assert row.rotated_at is not None
            row.rotated_at = row.rotated_at - dt.timedelta(seconds=settings.refresh_reuse_grace_seconds + 1)
            session.add(row)

    change(settings, age)
    reuse = flow.refresh(first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert all(g.revoked_at is not None for g in rows(settings, Grant))
    assert flow.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=_bearer(second["access_token"])).status_code == 401
    assert any(e.action == "oidc.refresh_token_reused" for e in rows(settings, AuditEvent))


def test_within_the_grace_window_a_reused_token_gets_a_fresh_pair_and_revokes_nothing(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.tokens()
    tab_one = flow.refresh(first["refresh_token"]).json()
    tab_two = flow.refresh(first["refresh_token"])
    assert tab_two.status_code == 200, tab_two.text
    assert tab_two.json()["refresh_token"] not in (first["refresh_token"], tab_one["refresh_token"])
    assert all(g.revoked_at is None for g in rows(settings, Grant))
    assert flow.refresh(tab_one["refresh_token"]).status_code == 200
    assert flow.refresh(tab_two.json()["refresh_token"]).status_code == 200


def test_a_refresh_token_presented_by_another_client_is_refused_and_changes_nothing(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    other_id, other_secret = make_client(settings, client_id="other-tool")
    issued = Flow(client, client_id, secret).tokens()
    stolen = Flow(client, other_id, other_secret).refresh(issued["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert all(t.rotated_at is None for t in rows(settings, RefreshToken))
    assert Flow(client, client_id, secret).refresh(issued["refresh_token"]).status_code == 200


def test_a_refresh_may_narrow_but_not_widen_the_scope(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret, scope="openid profile")
    issued = flow.tokens()
    wider = flow.refresh(issued["refresh_token"], scope="openid profile email")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrower = flow.refresh(issued["refresh_token"], scope="openid")
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "openid"


def _logout(client: TestClient) -> None:
    page = client.get("/logout")
    assert client.post("/logout", data={"csrf_token": csrf_from(page.text)}).status_code == 303


def test_ending_the_portail_session_revokes_refresh_tokens_without_offline_access(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    online = Flow(client, client_id, secret, scope="openid profile").tokens()
    offline = Flow(client, client_id, secret, scope="openid offline_access").tokens()
    _logout(client)
    ended = Flow(client, client_id, secret).refresh(online["refresh_token"])
    assert ended.status_code == 400 and ended.json()["error"] == "invalid_grant"
    kept = Flow(client, client_id, secret).refresh(offline["refresh_token"])
    assert kept.status_code == 200, kept.text
