"""Scopes, claims and the claims request parameter (OIDC Core §5.4, §5.5)."""

from __future__ import annotations

import pytest

from portail.oidc import claims, tokens
from portail.oidc.extensions import ProviderExtensions


def test_scopes_release_their_standard_claims() -> None:
    assert claims.released("openid", None, "id_token") == set()
    assert claims.released("openid profile", None, "id_token") == {"name", "preferred_username", "locale"}
    assert claims.released("openid email groups", None, "userinfo") == {"email", "email_verified", "groups"}


def test_the_claims_parameter_adds_supported_claims_for_its_target_only() -> None:
    request = claims.parse_claims_request(
        '{"id_token": {"email": {"essential": true}, "quota": null}, "userinfo": {"groups": null}}'
    )
    assert claims.released("openid", request, "id_token") == {"email"}
    assert claims.released("openid", request, "userinfo") == {"groups"}
    assert claims.requested_claims(request) == ["email", "groups"]


@pytest.mark.parametrize(
    "raw",
    ["[]", "{", '{"access_token": {}}', '{"id_token": []}', '{"id_token": {"email": true}}', '"x"'],
)
def test_a_malformed_claims_parameter_is_refused(raw: str) -> None:
    with pytest.raises(claims.ClaimsRequestError):
        claims.parse_claims_request(raw)


def test_an_absent_claims_parameter_is_none() -> None:
    assert claims.parse_claims_request(None) is None
    assert claims.parse_claims_request("") is None
    assert claims.parse_claims_request('{"id_token": null}') == {}


def test_acr_is_mfa_only_when_the_methods_say_mfa() -> None:
    """RFC 8176 §2: ``mfa`` = multiple-factor authentication; one factor alone is the password level."""
    assert claims.acr_for("pwd") == claims.ACR_PASSWORD
    assert claims.acr_for("hwk") == claims.ACR_PASSWORD
    assert claims.acr_for("pwd otp mfa") == claims.ACR_MFA


def test_at_hash_is_the_left_half_of_the_sha256() -> None:
    """OIDC Core §3.1.3.6, with the example of the spec's Appendix A.3 style: 128 bits, base64url."""
    value = tokens.half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNQ")
    assert len(value) == 22 and "=" not in value
    assert tokens.half_hash("a") != tokens.half_hash("b")


def test_registered_api_scopes_are_supported_but_release_no_claims() -> None:
    provider = ProviderExtensions()
    provider.register_scope("test:scope", "Une portée de test")
    assert "test:scope" in claims.scopes_supported(provider.api_scopes)
    assert "test:scope" not in claims.scopes_supported()  # another application's provider: not declared
    assert claims.released("openid test:scope", None, "userinfo") == set()
