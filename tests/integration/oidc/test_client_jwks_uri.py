"""private_key_jwt with keys published at the client's ``jwks_uri`` (RFC 7591 §2, RFC 7523 §3,
OIDC Core §9 and §10.1.1), fetched from a real local HTTP server (``stub_server``) standing in for
the tool."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from portail import cli
from portail.app import create_app
from portail.config import Settings
from tests.conftest import BASE_URL, free_port
from tests.oidc_flow import ASSERTION_TYPE, client_assertion, make_client, token_with_assertion
from tests.stub_server import StubServer


def _key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def _publish(stub: StubServer, *keys: RSAKey, **kwargs: Any) -> str:
    stub.route("/jwks.json", {"keys": [k.as_dict(private=False) for k in keys]}, **kwargs)
    return f"{stub.url}/jwks.json"


def _assertion(client_id: str, key: RSAKey, **overrides: Any) -> str:
    return client_assertion(client_id, key, key.kid or "", **overrides)


def _token(client: TestClient, assertion: str) -> Any:
    return token_with_assertion(client, assertion)


def _uri_client(settings: Settings, jwks_uri: str) -> str:
    client_id, _ = make_client(
        settings,
        client_id="jwks-uri-tool",
        grant_types=["client_credentials"],
        redirect_uris=[],
        token_endpoint_auth_method="private_key_jwt",
        jwks_uri=jwks_uri,
    )
    return client_id


def _fetches(stub: StubServer) -> int:
    return sum(1 for method, path, _ in stub.hits if method == "GET" and path == "/jwks.json")


def test_private_key_jwt_with_a_jwks_uri_authenticates_a_client(
    client: TestClient, settings: Settings, stub_server: StubServer
) -> None:
    key = _key("tool-1")
    client_id = _uri_client(settings, _publish(stub_server, key))
    first = _token(client, _assertion(client_id, key))
    assert first.status_code == 200, first.text
    assert first.json()["access_token"]
    second = _token(client, _assertion(client_id, key))
    assert second.status_code == 200, second.text
    assert _fetches(stub_server) == 1  # cached
    issued = first.json()["access_token"]
    introspected = client.post(
        "/introspect",
        data={"token": issued, "client_assertion_type": ASSERTION_TYPE, "client_assertion": _assertion(client_id, key)},
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True


def test_a_key_rotated_at_the_tool_is_picked_up_by_one_refetch(
    client: TestClient, settings: Settings, stub_server: StubServer
) -> None:
    old, new = _key("2026-01"), _key("2026-02")
    client_id = _uri_client(settings, _publish(stub_server, old))
    assert _token(client, _assertion(client_id, old)).status_code == 200
    _publish(stub_server, new)
    rotated = _token(client, _assertion(client_id, new))
    assert rotated.status_code == 200, rotated.text
    assert _fetches(stub_server) == 2
    retired = _token(client, _assertion(client_id, old))
    assert retired.status_code == 401 and retired.json()["error"] == "invalid_client"


def test_unknown_kids_cannot_make_portail_hammer_the_tool(
    client: TestClient, settings: Settings, stub_server: StubServer
) -> None:
    """At most one refetch per client per 30 s, however many unknown ``kid`` values arrive."""
    key = _key("real")
    client_id = _uri_client(settings, _publish(stub_server, key))
    assert _token(client, _assertion(client_id, key)).status_code == 200
    for n in range(4):
        forged = _token(client, _assertion(client_id, _key(f"forged-{n}")))
        assert forged.status_code == 401 and forged.json()["error"] == "invalid_client"
    assert _fetches(stub_server) == 2
    assert _token(client, _assertion(client_id, key)).status_code == 200


def test_an_unusable_jwks_uri_is_invalid_client(
    client: TestClient, settings: Settings, stub_server: StubServer
) -> None:
    key = _key("k")
    cases = [
        (f"{stub_server.url}/missing.json", "HTTP 404"),
        (f"{stub_server.url}/garbage.json", "usable JWK Set"),
        (f"http://127.0.0.1:{free_port()}/jwks.json", "(unreachable)"),
    ]
    stub_server.route("/garbage.json", "<html>not a key set</html>")
    for n, (uri, words) in enumerate(cases):
        client_id, _ = make_client(
            settings,
            client_id=f"broken-{n}",
            grant_types=["client_credentials"],
            redirect_uris=[],
            token_endpoint_auth_method="private_key_jwt",
            jwks_uri=uri,
        )
        response = _token(client, _assertion(client_id, key))
        assert response.status_code == 401, (uri, response.text)
        body = response.json()
        assert body["error"] == "invalid_client"
        assert words in body["error_description"], body


def _registration(**keys: Any) -> dict[str, Any]:
    """An RFC 7591 registration request of a private_key_jwt tool, with its key material."""
    return {
        "client_name": "Outil à clés",
        "grant_types": ["client_credentials"],
        "scope": "openid",
        "token_endpoint_auth_method": "private_key_jwt",
        **keys,
    }


def test_a_dynamic_clients_jwks_uri_on_a_private_address_is_refused(
    settings: Settings, stub_server: StubServer
) -> None:
    key = _key("k")
    uri = _publish(stub_server, key)
    strict = settings.replace(open_client_registration=True, allow_private_addresses=False)
    with TestClient(create_app(strict, migrate=False), base_url=BASE_URL, follow_redirects=False) as client:
        registered = client.post("/register", json=_registration(jwks_uri=uri))
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        response = _token(client, _assertion(client_id, key))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "address-loopback" in response.json()["error_description"]
    assert _fetches(stub_server) == 0


def test_registration_refuses_jwks_and_jwks_uri_together(settings: Settings) -> None:
    """RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be present"."""
    key = _key("k")
    with TestClient(
        create_app(settings.replace(open_client_registration=True), migrate=False), base_url=BASE_URL
    ) as client:
        response = client.post(
            "/register",
            json=_registration(
                jwks_uri="https://outil.example.org/jwks.json", jwks={"keys": [key.as_dict(private=False)]}
            ),
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_clients_create_with_a_jwks_uri_makes_a_private_key_jwt_client(
    settings: Settings,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An administrator's tool (``portail clients create --jwks-uri``) may be on loopback over http,
    even where the outbound guard refuses both for hosters' and registering tools' URLs."""
    for name in ("issuer", "database_url", "secret_key", "var_dir", "instances_file"):
        monkeypatch.setenv(f"PORTAIL_{name.upper()}", str(getattr(settings, name)))
    key = _key("cli")
    uri = _publish(stub_server, key, headers={"Cache-Control": "max-age=600"})
    argv = ["clients", "create", "--name", "Outil", "--grant-type", "client_credentials", "--jwks-uri", uri, "--json"]
    assert cli.main(argv) == 0
    client_id = json.loads(capsys.readouterr().out)["client_id"]
    strict = settings.replace(allow_http_instances=False, allow_private_addresses=False)
    with TestClient(create_app(strict, migrate=False), base_url=BASE_URL, follow_redirects=False) as client:
        response = _token(client, _assertion(client_id, key))
    assert response.status_code == 200, response.text
