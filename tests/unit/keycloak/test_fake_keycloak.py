"""The fake Keycloak (tests/fakes/keycloak.py) refuses what Keycloak refuses, as python-keycloak sees it:
a wrong admin credential (401), an unknown realm (404), an identity-provider alias used twice (409)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakError

from tests.fakes.keycloak import FakeClient, FakeKeycloak
from tests.fakes.server import serve


@pytest.fixture
def keycloak() -> Iterator[tuple[FakeKeycloak, str]]:
    fake = FakeKeycloak()
    fake.realm("coop").clients["admin"] = FakeClient("secret", service_account=True)
    with serve(fake) as url:
        yield fake, url


def admin(url: str, realm: str = "coop", secret: str = "secret") -> KeycloakAdmin:
    return KeycloakAdmin(server_url=url, realm_name=realm, client_id="admin", client_secret_key=secret, timeout=5)


def test_wrong_admin_secret_is_401_and_unknown_realm_is_404(keycloak: tuple[FakeKeycloak, str]) -> None:
    _fake, url = keycloak
    with pytest.raises(KeycloakAuthenticationError) as wrong:
        admin(url, secret="wrong").get_users({"first": 0, "max": 10})
    assert wrong.value.response_code == 401
    with pytest.raises(KeycloakError) as unknown:
        admin(url, realm="nowhere").get_users({"first": 0, "max": 10})
    assert unknown.value.response_code == 404


def test_a_forged_admin_token_is_401(keycloak: tuple[FakeKeycloak, str]) -> None:
    """python-keycloak fetches a new token after a 401, so the forged token is sent by hand."""
    _fake, url = keycloak
    assert admin(url).users_count() == 0
    answer = httpx.get(f"{url}/admin/realms/coop/users", headers={"Authorization": "Bearer forged"})
    assert answer.status_code == 401 and answer.json() == {"error": "HTTP 401 Unauthorized"}


def test_an_identity_provider_alias_is_created_once(keycloak: tuple[FakeKeycloak, str]) -> None:
    _fake, url = keycloak
    client = admin(url)
    provider = {"alias": "encommun", "providerId": "oidc", "config": {"clientSecret": "s"}}
    client.create_idp(provider)
    with pytest.raises(KeycloakError) as twice:
        client.create_idp(provider)
    assert twice.value.response_code == 409
    assert client.get_idp("encommun")["config"]["clientSecret"] == "**********"
    with pytest.raises(KeycloakError) as missing:
        client.get_idp("other")
    assert missing.value.response_code == 404
