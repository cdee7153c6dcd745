"""The authorization code flow with PKCE, end to end over HTTP (RFC 6749 §4.1, OIDC Core §3.1)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import BASE_URL
from tests.oidc_flow import REDIRECT_URI, Flow, decode, make_client, query_of


def test_a_member_logs_in_consents_and_the_client_gets_valid_tokens(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.authorize()
    assert first.status_code == 303
    assert first.headers["location"].startswith("/login?next=%2Fauthorize%2Fresume%2F")
    after_login = flow.log_in(first.headers["location"])
    resumed = client.get(after_login.headers["location"])
    assert resumed.headers["location"].startswith("/authorize/consent/")
    page = client.get(resumed.headers["location"])
    assert 'name="decision" value="allow"' in page.text and 'value="deny"' in page.text
    assert "Outil de test" in page.text
    answer = flow.consent(resumed.headers["location"])
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert params["state"] == flow.state
    assert params["iss"] == BASE_URL  # RFC 9207
    response = flow.token(params["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"]
    id_token = decode(client, body["id_token"])
    assert id_token["iss"] == BASE_URL
    assert id_token["aud"] == client_id and id_token["azp"] == client_id
    assert id_token["nonce"] == flow.nonce
    assert id_token["exp"] > time.time() > id_token["iat"] - 5
    assert {"sub", "auth_time", "sid", "amr", "at_hash"} <= set(id_token)
    assert id_token["name"] == "Alice Tremblay"
    assert id_token["preferred_username"] == "alice"
    assert id_token["email"] == "alice@example.org" and id_token["email_verified"] is True
    access = decode(client, body["access_token"])
    assert access["aud"] == client_id and access["client_id"] == client_id
    assert access["sub"] == id_token["sub"]
    assert access["scope"] == "openid profile email"


def test_a_second_visit_gets_a_code_without_any_page(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret).tokens()
    again = Flow(client, client_id, secret).authorize()
    assert again.status_code == 302
    assert again.headers["location"].startswith(REDIRECT_URI + "?code=")


def test_a_signed_in_authorize_is_one_unit_of_work_reading_the_policy_once(
    client: TestClient, settings: Settings, member: Member
) -> None:
    """Every login to a tool: the session cookie is resolved in the same transaction as the request
    (``SessionLoader`` defers ``/authorize`` to its route) and the current policy is read once."""
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret).tokens()  # consent given
    engine = client.app.state.db.engine  # type: ignore[attr-defined]
    commits: list[int] = []
    statements: list[str] = []

    def on_commit(_conn: Any) -> None:
        commits.append(1)

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "commit", on_commit)
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        again = Flow(client, client_id, secret).authorize()
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_statement)
    assert again.status_code == 302 and "code=" in again.headers["location"]
    assert len(commits) == 1
    assert sum("FROM login_session" in s for s in statements) == 1
    assert sum("FROM privacy_policy_version" in s for s in statements) == 1
