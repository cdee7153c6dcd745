"""The Keycloak bridge's domain functions: the one password check against the realm (bridge.py) and
how a realm's users become members to bring in (realm_import.candidates)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from portail.accounts.newcomers import Candidate, Refusal
from portail.accounts.passwords import CheckUnavailable
from portail.keycloak.bridge import BridgeRealm, check_password
from portail.keycloak.realm_import import candidates
from tests.conftest import free_port
from tests.fakes.keycloak import FakeClient, FakeKeycloak, FakeUser
from tests.fakes.server import serve


@pytest.fixture
def realm() -> Iterator[tuple[FakeKeycloak, str]]:
    fake = FakeKeycloak()
    coop = fake.realm("coop")
    coop.clients["bridge"] = FakeClient("bridge-secret", direct_access=True)
    coop.clients["import"] = FakeClient("import-secret", service_account=True)
    coop.users += [FakeUser("alice", "alice@coop.example", "bon"), FakeUser("bob", "b@c.example", "bon", enabled=False)]
    with serve(fake) as url:
        yield fake, url


def _check(url: str, username: str, password: str, client: str = "bridge", secret: str = "bridge-secret") -> bool:
    return asyncio.run(check_password(BridgeRealm(url, "coop", client, secret, 2.0), username, password))


def test_the_realm_says_yes_only_to_the_right_password_of_an_enabled_user(realm: tuple[FakeKeycloak, str]) -> None:
    fake, url = realm
    assert _check(url, "alice", "bon")
    assert not _check(url, "alice", "mauvais")
    assert not _check(url, "bob", "bon")  # disabled: invalid_grant
    assert fake.password_grants == 3


def test_a_realm_that_cannot_say_is_unavailable_not_a_wrong_password(realm: tuple[FakeKeycloak, str]) -> None:
    fake, url = realm
    with pytest.raises(CheckUnavailable):
        _check(url, "alice", "bon", secret="not-the-bridge-secret")  # the bridge's client is refused
    with pytest.raises(CheckUnavailable):
        _check(url, "alice", "bon", client="import", secret="import-secret")  # no direct access grants
    fake.mode = "error"
    with pytest.raises(CheckUnavailable):
        _check(url, "alice", "bon")
    with pytest.raises(CheckUnavailable):
        _check(f"http://127.0.0.1:{free_port()}", "alice", "bon")  # nothing listens there


def test_realm_users_become_candidates_or_refusals() -> None:
    users = [
        {"id": "1", "username": "alice", "email": "Alice@Coop.EXAMPLE", "firstName": "Alice", "lastName": "Roy",
         "emailVerified": True, "enabled": True, "createdTimestamp": 1_600_000_000_000,
         "groups": ["TIESS", "Staff members", "mrc-memphremagog"]},
        {"id": "2", "username": "bob", "email": "bob@coop.example", "enabled": False, "groups": []},
        {"id": "3", "username": "carol", "groups": []},
        {"id": "4", "username": "dan", "email": "pas une adresse", "groups": []},
    ]  # fmt: skip
    alice, bob, carol, dan = candidates(users)
    assert isinstance(alice, Candidate) and isinstance(bob, Candidate)
    assert (alice.email, alice.name, alice.password_hash) == ("Alice@coop.example", "Alice Roy", "{KEYCLOAK}alice")
    assert alice.organizations == ("tiess", "mrc-memphremagog") and alice.verified and alice.enabled
    assert alice.created_at is not None and alice.created_at.year == 2020
    assert (bob.name, bob.enabled, bob.verified) == ("bob", False, False)
    assert isinstance(carol, Refusal) and carol.line == 3 and carol.reason == "Compte Keycloak sans adresse courriel."
    assert isinstance(dan, Refusal) and dan.reason == "Adresse courriel invalide."
