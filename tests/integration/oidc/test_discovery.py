"""Discovery (OIDC Discovery 1.0 §3, RFC 8414 §2) and the JWKS (RFC 7517 §5)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import BASE_URL


def test_discovery_lists_the_required_metadata(client: TestClient) -> None:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == BASE_URL
    assert doc["jwks_uri"] == f"{BASE_URL}/jwks"
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public", "pairwise"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert doc["claims_parameter_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True


def test_discovery_lists_only_endpoints_that_answer(client: TestClient) -> None:
    """Discovery §3: every endpoint listed must work (an absent route is not advertised)."""
    doc = client.get("/.well-known/openid-configuration").json()
    endpoints = {k: v for k, v in doc.items() if k.endswith(("_endpoint", "_uri")) and isinstance(v, str)}
    assert "jwks_uri" in endpoints
    for key, url in endpoints.items():
        assert url.startswith(BASE_URL + "/"), key
        assert "?" not in url, key
        path = url.removeprefix(BASE_URL)
        answer = client.get(path)
        assert answer.status_code != 404, key
        assert answer.status_code < 500, key


def test_rfc8414_metadata_has_the_same_issuer(client: TestClient) -> None:
    doc = client.get("/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == BASE_URL
    assert doc["response_types_supported"] == ["code"]


def test_jwks_publishes_an_rsa_and_an_ec_signing_key(client: TestClient) -> None:
    keys = client.get("/jwks").json()["keys"]
    by_alg = {k["alg"]: k for k in keys}
    assert set(by_alg) == {"RS256", "ES256"}
    for key in keys:
        assert key["use"] == "sig"
        assert key["kid"]
        assert "d" not in key and "p" not in key
    assert len(by_alg["RS256"]["n"]) >= 342  # 2048 bits in base64url
    assert by_alg["ES256"]["crv"] == "P-256"
