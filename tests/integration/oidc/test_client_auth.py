"""Client credentials (RFC 6749 §4.4) and private_key_jwt client authentication (RFC 7523 §2.2, §3;
OIDC Core §9)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from portail.config import Settings
from portail.oidc import assertions, tokens
from portail.oidc.models import ClientAssertion
from tests.conftest import BASE_URL, db_call
from tests.oidc_flow import (
    basic,
    change,
    client_assertion,
    decode,
    make_client,
    rows,
    token_with_assertion,
)


def test_client_credentials_gives_an_access_token_for_the_client_itself(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings, grant_types=["client_credentials"], redirect_uris=[])
    assert secret is not None
    response = client.post("/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body
    claims = decode(client, body["access_token"])
    assert claims["sub"] == client_id and claims["client_id"] == client_id


def test_client_credentials_cannot_ask_for_member_scopes(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings, grant_types=["client_credentials"], redirect_uris=[])
    assert secret is not None
    response = client.post(
        "/token", data={"grant_type": "client_credentials", "scope": "openid email"}, headers=basic(client_id, secret)
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_a_public_client_cannot_use_client_credentials(client: TestClient, settings: Settings) -> None:
    client_id, _ = make_client(settings, public=True)
    response = client.post("/token", data={"grant_type": "client_credentials", "client_id": client_id})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


# ---------------------------------------------------------------- private_key_jwt


def _key_client(settings: Settings) -> tuple[str, RSAKey]:
    key = RSAKey.generate_key(2048, parameters={"kid": "tool-key", "use": "sig", "alg": "RS256"})
    client_id, _ = make_client(
        settings,
        client_id="jwt-tool",
        grant_types=["client_credentials"],
        redirect_uris=[],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    return client_id, key


def _assertion(client_id: str, key: RSAKey, **overrides: Any) -> str:
    return client_assertion(client_id, key, "tool-key", **overrides)


def _token(client: TestClient, assertion: str) -> Any:
    return token_with_assertion(client, assertion)


def test_private_key_jwt_authenticates_a_client(client: TestClient, settings: Settings) -> None:
    client_id, key = _key_client(settings)
    response = _token(client, _assertion(client_id, key))
    assert response.status_code == 200, response.text
    issuer_audience = _token(client, _assertion(client_id, key, aud=BASE_URL))
    assert issuer_audience.status_code == 200, issuer_audience.text


def test_a_tampered_assertion_is_invalid_client(client: TestClient, settings: Settings) -> None:
    client_id, key = _key_client(settings)
    head, _body, signature = _assertion(client_id, key).split(".")
    other = _assertion(client_id, key, exp=int(time.time()) + 3600).split(".")[1]
    response = _token(client, f"{head}.{other}.{signature}")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    foreign = RSAKey.generate_key(2048, parameters={"kid": "tool-key"})
    assert _token(client, _assertion(client_id, foreign)).status_code == 401
    assert _token(client, "not-a-jwt").status_code == 401


def test_an_expired_assertion_is_invalid_client(client: TestClient, settings: Settings) -> None:
    client_id, key = _key_client(settings)
    past = int(time.time()) - 3600
    response = _token(client, _assertion(client_id, key, iat=past - 60, exp=past))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_an_assertion_for_another_audience_is_invalid_client(client: TestClient, settings: Settings) -> None:
    client_id, key = _key_client(settings)
    response = _token(client, _assertion(client_id, key, aud="https://elsewhere.example/token"))
    assert response.status_code == 401


def test_an_assertion_is_single_use(client: TestClient, settings: Settings) -> None:
    """RFC 7523 §3 item 7: the jti may be used only once."""
    client_id, key = _key_client(settings)
    assertion = _assertion(client_id, key)
    assert _token(client, assertion).status_code == 200
    replay = _token(client, assertion)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert len(rows(settings, ClientAssertion)) == 1


def test_a_client_credentials_token_fails_verification_once_the_client_tokens_are_revoked(
    client: TestClient, settings: Settings
) -> None:
    client_id, secret = make_client(settings, grant_types=["client_credentials"], redirect_uris=[])
    assert secret is not None
    token = client.post("/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))
    access = token.json()["access_token"]
    change(settings, lambda s: tokens.verify_access_token(s, settings, access) and None)
    change(settings, lambda s: tokens.revoke_client_tokens(s, client_id, "test"))

    def check(session: Any) -> None:
        try:
            tokens.verify_access_token(session, settings, access)
        except tokens.InvalidToken as exc:
            assert exc.error == "invalid_token"
        else:
            raise AssertionError("the token still verifies")

    change(settings, check)


def test_an_assertion_living_longer_than_ten_minutes_is_invalid_client_and_leaves_no_record(
    client: TestClient, settings: Settings
) -> None:
    """RFC 7523 §3 lets the server cap ``exp``: a year-long assertion is refused, nothing is recorded."""
    client_id, key = _key_client(settings)
    now = int(time.time())
    for claims in ({"exp": now + 365 * 86400}, {"iat": now - 3600, "exp": now + 60}, {"iat": now + 3600}):
        response = _token(client, _assertion(client_id, key, **claims))
        assert response.status_code == 401 and response.json()["error"] == "invalid_client", response.text
    assert rows(settings, ClientAssertion) == []
    assert _token(client, _assertion(client_id, key, iat=now, exp=now + 600)).status_code == 200


def test_a_replay_record_lasts_until_the_assertion_expires_then_is_purged(
    client: TestClient, settings: Settings
) -> None:
    """The jti is refused for as long as the assertion could be accepted (exp + leeway), then forgotten."""
    client_id, key = _key_client(settings)
    exp = int(time.time()) + 300
    assertion = _assertion(client_id, key, exp=exp)
    assert _token(client, assertion).status_code == 200
    [record] = rows(settings, ClientAssertion)
    kept_until = dt.datetime.fromtimestamp(exp, dt.UTC) + assertions.LEEWAY
    assert record.expires_at.replace(tzinfo=dt.UTC) == kept_until
    assert db_call(settings, assertions.purge_expired, kept_until - dt.timedelta(seconds=1)) == 0
    assert _token(client, assertion).status_code == 401
    assert db_call(settings, assertions.purge_expired, kept_until + dt.timedelta(seconds=1)) == 1
    assert rows(settings, ClientAssertion) == []
