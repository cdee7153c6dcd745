"""Dynamic Client Registration (RFC 7591) and its management (RFC 7592) over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import func, select
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.oidc import initial_tokens
from portail.oidc.clients import hash_secret
from portail.oidc.models import Consent, ConsentEvent, Grant, InitialAccessToken, OAuthClient
from tests.conftest import BASE_URL
from tests.oidc_flow import REDIRECT_URI, Flow, rows

METADATA: dict[str, Any] = {
    "client_name": "Nextcloud de la Table de quartier",
    "redirect_uris": ["https://nuage.example.org/index.php/apps/user_oidc/code"],
    "post_logout_redirect_uris": ["https://nuage.example.org/"],
    "backchannel_logout_uri": "https://nuage.example.org/index.php/apps/user_oidc/backchannel-logout/portail",
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile email",
    "software_id": "nextcloud-user_oidc",
    "contacts": ["admin@example.org"],
    "made_up_metadata": "ignored",
}


def _token(settings: Settings, **kwargs: Any) -> str:
    handle = database.Database(settings)
    try:
        with handle.session() as s:
            token, _row = initial_tokens.create(s, **kwargs)
            return token
    finally:
        handle.dispose()


def _count(settings: Settings) -> int:
    handle = database.Database(settings)
    try:
        with handle.session() as s:
            return int(s.exec(select(func.count()).select_from(OAuthClient)).one())
    finally:
        handle.dispose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_registration_without_initial_access_token_is_refused_when_closed(
    client: TestClient, settings: Settings
) -> None:
    """RFC 7591 §3: the endpoint may require an initial access token; RFC 6750 §3 challenge."""
    response = client.post("/register", json=METADATA)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "invalid_token"
    assert _count(settings) == 0


def test_registration_with_initial_access_token_creates_a_client(client: TestClient, settings: Settings) -> None:
    """RFC 7591 §3.2.1: 201 with client_id, secret, client_secret_expires_at and RFC 7592 fields."""
    token = _token(settings, uses=2)
    response = client.post("/register", json=METADATA, headers=_bearer(token))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert body["client_id_issued_at"] > 0
    assert body["registration_client_uri"] == f"{BASE_URL}/register/{body['client_id']}"
    assert body["redirect_uris"] == METADATA["redirect_uris"]
    assert body["backchannel_logout_uri"] == METADATA["backchannel_logout_uri"]
    assert body["software_id"] == "nextcloud-user_oidc" and body["contacts"] == ["admin@example.org"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["subject_type"] == settings.default_subject_type
    assert "made_up_metadata" not in body
    handle = database.Database(settings)
    with handle.session() as s:
        stored = s.exec(select(OAuthClient).where(OAuthClient.client_id == body["client_id"])).one()
        iat = s.exec(select(InitialAccessToken)).one()
    handle.dispose()
    assert stored.registered_dynamically and not stored.trusted
    assert stored.registration_access_token_hash == hash_secret(body["registration_access_token"])
    assert stored.client_secret_hash == hash_secret(body["client_secret"])
    assert iat.uses_left == 1 and iat.token_hash == hash_secret(token)


def test_an_initial_access_token_is_spent_after_its_uses(client: TestClient, settings: Settings) -> None:
    token = _token(settings, uses=1)
    assert client.post("/register", json=METADATA, headers=_bearer(token)).status_code == 201
    again = client.post("/register", json=METADATA, headers=_bearer(token))
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in again.headers["www-authenticate"]
    assert _count(settings) == 1


def test_an_expired_or_unknown_initial_access_token_is_refused(client: TestClient, settings: Settings) -> None:
    expired = _token(settings, expires_in=dt.timedelta(seconds=-1))
    assert client.post("/register", json=METADATA, headers=_bearer(expired)).status_code == 401
    assert client.post("/register", json=METADATA, headers=_bearer("made-up")).status_code == 401
    assert _count(settings) == 0


def test_bad_metadata_does_not_spend_a_use(client: TestClient, settings: Settings) -> None:
    token = _token(settings, uses=1)
    bad = client.post("/register", json={**METADATA, "grant_types": ["password"]}, headers=_bearer(token))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client_metadata"
    assert client.post("/register", json=METADATA, headers=_bearer(token)).status_code == 201


@pytest.mark.parametrize(
    "redirect_uris",
    [
        ["http://nuage.example.org/cb"],
        ["https://nuage.example.org/cb#fragment"],
        ["not a uri"],
        [],
        "https://nuage.example.org/cb",
    ],
)
def test_invalid_redirect_uris_are_refused(client: TestClient, settings: Settings, redirect_uris: object) -> None:
    """RFC 7591 §3.2.2 invalid_redirect_uri; hoster-supplied URIs must be https."""
    token = _token(settings)
    response = client.post("/register", json={**METADATA, "redirect_uris": redirect_uris}, headers=_bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    if isinstance(redirect_uris, list) and redirect_uris:
        assert response.json()["error"] == "invalid_redirect_uri"
    assert _count(settings) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"grant_types": ["implicit"]},
        {"response_types": ["token"]},
        {"scope": "openid admin"},
        {"scope": "openid federation:write"},  # API scopes are the federation's to give, not to register
        {"scope": "openid notifications:push"},
        {"token_endpoint_auth_method": "client_secret_jwt"},
        {"backchannel_logout_uri": "http://nuage.example.org/bc"},
        {"post_logout_redirect_uris": ["ftp://nuage.example.org/"]},
        {"logo_uri": "javascript:alert(1)"},
        {"subject_type": "secret"},
        {"id_token_signed_response_alg": "none"},
        {"sector_identifier_uri": "https://nuage.example.org/sector.json"},
        {"client_name": ["not", "a", "string"]},
    ],
)
def test_invalid_client_metadata_is_refused(client: TestClient, settings: Settings, change: dict[str, Any]) -> None:
    """RFC 7591 §3.2.2 invalid_client_metadata, as JSON, nothing created."""
    response = client.post("/register", json={**METADATA, **change}, headers=_bearer(_token(settings)))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert response.json()["error_description"].isascii()
    assert _count(settings) == 0


def test_a_body_that_is_not_a_json_object_is_refused(client: TestClient, settings: Settings) -> None:
    token = _token(settings)
    form = client.post("/register", data={"client_name": "x"}, headers=_bearer(token))
    broken = client.post(
        "/register", content=b"{not json", headers={**_bearer(token), "Content-Type": "application/json"}
    )
    array = client.post("/register", json=[METADATA], headers=_bearer(token))
    for response in (form, broken, array):
        assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"


def test_a_public_client_registers_without_a_secret(client: TestClient, settings: Settings) -> None:
    body = client.post(
        "/register", json={**METADATA, "token_endpoint_auth_method": "none"}, headers=_bearer(_token(settings))
    ).json()
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"


@pytest.fixture
def open_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.replace(open_client_registration=True), migrate=False)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as test_client:
        yield test_client


def test_open_registration_needs_no_token_but_refuses_a_bad_one(open_client: TestClient) -> None:
    assert open_client.post("/register", json=METADATA).status_code == 201
    assert open_client.post("/register", json=METADATA, headers=_bearer("wrong")).status_code == 401


def test_loopback_http_is_accepted_only_when_http_instances_are_allowed(settings: Settings) -> None:
    local = {**METADATA, "redirect_uris": ["http://127.0.0.1:8080/cb"], "backchannel_logout_uri": None}
    for allowed, expected in ((True, 201), (False, 400)):
        app = create_app(settings.replace(allow_http_instances=allowed), migrate=False)
        with TestClient(app, base_url=BASE_URL) as test_client:
            response = test_client.post("/register", json=local, headers=_bearer(_token(settings)))
        assert response.status_code == expected, response.text


# ---------------------------------------------------------------- RFC 7592


def _registered(client: TestClient, settings: Settings) -> dict[str, Any]:
    response = client.post("/register", json=METADATA, headers=_bearer(_token(settings)))
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def _path(body: dict[str, Any]) -> str:
    return str(body["registration_client_uri"]).removeprefix(BASE_URL)


def test_a_client_reads_its_registration_with_its_token(client: TestClient, settings: Settings) -> None:
    """RFC 7592 §2.1."""
    body = _registered(client, settings)
    response = client.get(_path(body), headers=_bearer(body["registration_access_token"]))
    assert response.status_code == 200
    read = response.json()
    assert read["client_id"] == body["client_id"] and read["redirect_uris"] == METADATA["redirect_uris"]
    assert "client_secret" not in read and "registration_access_token" not in read


def test_a_wrong_registration_token_or_another_clients_token_is_refused(client: TestClient, settings: Settings) -> None:
    """RFC 7592 §2: 401 for an invalid token or an unknown client."""
    first = _registered(client, settings)
    second = _registered(client, settings)
    for path, token in (
        (_path(first), "wrong"),
        (_path(first), second["registration_access_token"]),
        ("/register/unknown", first["registration_access_token"]),
    ):
        response = client.get(path, headers=_bearer(token))
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert client.get(_path(first)).status_code == 401


def test_a_client_replaces_its_metadata(client: TestClient, settings: Settings) -> None:
    """RFC 7592 §2.2: the whole metadata is replaced; omitted values take their defaults."""
    body = _registered(client, settings)
    update = {
        "client_id": body["client_id"],
        "client_name": "Nuage renommé",
        "redirect_uris": ["https://nuage.example.org/new/cb"],
        "client_secret": body["client_secret"],
    }
    response = client.put(_path(body), json=update, headers=_bearer(body["registration_access_token"]))
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["client_name"] == "Nuage renommé"
    assert changed["redirect_uris"] == ["https://nuage.example.org/new/cb"]
    assert changed["grant_types"] == ["authorization_code"] and "backchannel_logout_uri" not in changed
    assert "software_id" not in changed


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "another"},
        {"registration_access_token": "x"},
        {"client_secret": "not the secret"},
        {"redirect_uris": ["http://evil.example/cb"]},
        {"token_endpoint_auth_method": "none"},
    ],
)
def test_an_invalid_replacement_is_refused_and_changes_nothing(
    client: TestClient, settings: Settings, change: dict[str, Any]
) -> None:
    body = _registered(client, settings)
    update = {"client_id": body["client_id"], **METADATA, **change}
    token = body["registration_access_token"]
    response = client.put(_path(body), json=update, headers=_bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert client.get(_path(body), headers=_bearer(token)).json()["redirect_uris"] == METADATA["redirect_uris"]


def test_a_client_deletes_itself(client: TestClient, settings: Settings) -> None:
    """RFC 7592 §2.3: 204, then the client and its token are gone."""
    body = _registered(client, settings)
    token = body["registration_access_token"]
    response = client.delete(_path(body), headers=_bearer(token))
    assert response.status_code == 204
    assert client.get(_path(body), headers=_bearer(token)).status_code == 401
    assert _count(settings) == 0


def test_a_client_deleting_itself_revokes_its_tokens_and_withdraws_consents_in_the_ledger(
    client: TestClient, settings: Settings, member: Member
) -> None:
    """RFC 7592 §2.3 runs the same deletion as ``portail clients delete``: tokens revoked, consents
    withdrawn with a ledger event, sessions forgotten."""
    metadata = {**METADATA, "redirect_uris": [REDIRECT_URI]}
    registered = client.post("/register", json=metadata, headers=_bearer(_token(settings)))
    assert registered.status_code == 201, registered.text
    body = registered.json()
    issued = Flow(client, body["client_id"], body["client_secret"]).tokens()
    response = client.delete(_path(body), headers=_bearer(body["registration_access_token"]))
    assert response.status_code == 204
    assert rows(settings, OAuthClient) == [] and rows(settings, Consent) == []
    assert all(g.revoked_at is not None for g in rows(settings, Grant))
    events = rows(settings, ConsentEvent)
    assert [e.action for e in events] == ["granted", "withdrawn"]
    assert "RFC 7592" in events[-1].detail
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"}).status_code == 401


# ---------------------------------------------------------------- bodies that must never crash

JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 1500 + b"]" * 1500


def test_unreadable_registration_bodies_are_invalid_client_metadata_and_spend_no_use(
    client: TestClient, settings: Settings
) -> None:
    """RFC 7591 §3.2.2: 1,500 levels of nesting, an unpaired surrogate, NUL: 400, never a 500."""
    token = _token(settings, uses=1)
    surrogate = json.dumps({**METADATA, "client_name": "\ud800"}).encode()
    nul = json.dumps({**METADATA, "client_name": "a\u0000b"}).encode()
    deep_object = json.dumps(
        {**METADATA, "extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    )
    for raw in (DEEP, b'{"a":' * 1500 + b"1" + b"}" * 1500, surrogate, nul, deep_object.encode(), b'{"a": "\xff"}'):
        response = client.post("/register", content=raw, headers={**_bearer(token), **JSON})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_client_metadata"
    assert client.post("/register", json=METADATA, headers=_bearer(token)).status_code == 201
    assert _count(settings) == 1


def test_a_registration_body_over_64_kib_is_413_in_json(client: TestClient, settings: Settings) -> None:
    big = json.dumps({**METADATA, "client_name": "x" * 70_000}).encode()
    response = client.post("/register", content=big, headers={**_bearer(_token(settings)), **JSON})
    assert response.status_code == 413 and response.json()["error"] == "invalid_request"


def test_rfc7592_the_registration_token_is_checked_before_the_body_is_read(
    client: TestClient, settings: Settings
) -> None:
    """A caller without the registration access token gets 401 whatever it sends; with it, 400."""
    body = _registered(client, settings)
    for raw in (DEEP, json.dumps({**METADATA, "client_name": "\udfff"}).encode(), b"{oops"):
        stranger = client.put(_path(body), content=raw, headers={**_bearer("not-the-token"), **JSON})
        assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_token"
        owner = client.put(_path(body), content=raw, headers={**_bearer(body["registration_access_token"]), **JSON})
        assert owner.status_code == 400 and owner.json()["error"] == "invalid_client_metadata"
    unchanged = client.get(_path(body), headers=_bearer(body["registration_access_token"])).json()
    assert unchanged["client_name"] == METADATA["client_name"]
