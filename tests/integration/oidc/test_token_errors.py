"""Bad token requests (RFC 6749 §5.2, RFC 7636 §4.6, RFC 7523 §3): the exact error, nothing
issued, never a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc.models import AuthorizationCode, Grant, OAuthClient, RefreshToken
from tests.oidc_flow import Flow, basic, change, make_client, rows


def _error(response: object, status: int, error: str) -> dict[str, str]:
    assert getattr(response, "status_code") == status, getattr(response, "text")  # noqa: B009
    body: dict[str, str] = getattr(response, "json")()  # noqa: B009
    assert body["error"] == error, body
    assert getattr(response, "headers")["cache-control"] == "no-store"  # noqa: B009
    return body


def _no_tokens(settings: Settings) -> None:
    assert rows(settings, Grant) == []
    assert rows(settings, RefreshToken) == []


def test_a_wrong_code_verifier_is_invalid_grant(client: TestClient, settings: Settings, member: Member) -> None:
    """RFC 7636 §4.6: a verifier that does not match the challenge is invalid_grant."""
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    _error(flow.token(code, code_verifier="x" * 50), 400, "invalid_grant")
    _no_tokens(settings)


def test_a_verifier_without_a_challenge_is_refused(client: TestClient, settings: Settings, member: Member) -> None:
    """RFC 9700 §4.8.2: a code_verifier for a code that had no challenge is rejected."""
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code(code_challenge=None, code_challenge_method=None)["code"]  # type: ignore[arg-type]
    _error(flow.token(code), 400, "invalid_request")
    _no_tokens(settings)


def test_a_public_client_must_send_its_verifier(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, _ = make_client(settings, public=True)
    flow = Flow(client, client_id)
    code = flow.code()["code"]
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": client_id,
        },
    )
    _error(response, 400, "invalid_request")
    ok = flow.token(code)
    assert ok.status_code == 400  # the code was consumed by the failed attempt
    _no_tokens(settings)


def test_a_code_used_twice_fails_and_revokes_what_the_first_use_issued(
    client: TestClient, settings: Settings, member: Member
) -> None:
    """RFC 6749 §4.1.2: the second use MUST be denied; tokens from the first SHOULD be revoked."""
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    first = flow.token(code)
    assert first.status_code == 200
    issued = first.json()
    _error(flow.token(code), 400, "invalid_grant")
    grants = rows(settings, Grant)
    assert len(grants) == 1 and grants[0].revoked_at is not None
    _error(flow.refresh(issued["refresh_token"]), 400, "invalid_grant")
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert userinfo.status_code == 401


def test_an_expired_code_is_invalid_grant(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]

    def age(session: Session) -> None:
        for row in session.exec(select(AuthorizationCode)):
            row.expires_at = row.created_at - dt.timedelta(seconds=1)
            session.add(row)

    change(settings, age)
    _error(flow.token(code), 400, "invalid_grant")
    _no_tokens(settings)


def test_a_code_of_another_client_or_redirect_uri_is_invalid_grant(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    other_id, other_secret = make_client(settings, client_id="other")
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    _error(Flow(client, other_id, other_secret, verifier=flow.verifier).token(code), 400, "invalid_grant")
    code = flow.code()["code"]
    _error(flow.token(code, redirect_uri="http://localhost:9000/other"), 400, "invalid_grant")
    _no_tokens(settings)


def test_a_wrong_client_secret_is_401_invalid_client(client: TestClient, settings: Settings, member: Member) -> None:
    """RFC 6749 §5.2: an Authorization header that fails gets 401 with WWW-Authenticate."""
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, "wrong-secret")
    code = Flow(client, client_id, secret, verifier=flow.verifier, challenge=flow.challenge).code()["code"]
    response = flow.token(code)
    _error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    posted = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": client_id,
            "client_secret": "wrong",
            "code_verifier": flow.verifier,
        },
    )
    _error(posted, 401, "invalid_client")
    unknown = client.post(
        "/token", data={"grant_type": "authorization_code", "code": code}, headers=basic("nobody", "x")
    )
    _error(unknown, 401, "invalid_client")
    _no_tokens(settings)


def test_client_secret_post_is_accepted_as_well_as_basic(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": client_id,
            "client_secret": secret,
            "code_verifier": flow.verifier,
        },
    )
    assert response.status_code == 200, response.text


def test_a_confidential_client_cannot_skip_authentication(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": client_id,
            "code_verifier": flow.verifier,
        },
    )
    _error(response, 401, "invalid_client")
    _no_tokens(settings)


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"])
def test_an_unsupported_grant_type_is_refused(client: TestClient, settings: Settings, grant_type: str) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    response = client.post("/token", data={"grant_type": grant_type}, headers=basic(client_id, secret))
    _error(response, 400, "unsupported_grant_type")


def test_a_missing_grant_type_is_invalid_request(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    _error(client.post("/token", data={"code": "x"}, headers=basic(client_id, secret)), 400, "invalid_request")


def test_repeated_or_oversized_parameters_are_invalid_request(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    assert secret is not None
    repeated = client.post(
        "/token",
        content=f"grant_type=authorization_code&code={code}&code=other&redirect_uri={flow.redirect_uri}",
        headers={**basic(client_id, secret), "Content-Type": "application/x-www-form-urlencoded"},
    )
    _error(repeated, 400, "invalid_request")
    _error(flow.token("c" * 5000), 400, "invalid_request")
    huge = client.post("/token", data={"grant_type": "authorization_code", "code": "x" * 70_000})
    _error(huge, 400, "invalid_request")
    _no_tokens(settings)
    assert flow.token(code).status_code == 200  # the code survived the refused attempts


def test_a_disabled_client_gets_nothing(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]

    def disable(session: Session) -> None:
        row = session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).one()
        row.disabled_at = dt.datetime.now(dt.UTC)
        session.add(row)

    change(settings, disable)
    _error(flow.token(code), 401, "invalid_client")
    _no_tokens(settings)


def test_the_client_may_not_use_a_grant_type_it_was_not_given(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    response = client.post("/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))
    _error(response, 400, "unauthorized_client")
