"""Journeys of the Keycloak bridge, against the fake Keycloak of ``tests/fakes/keycloak.py`` (Keycloak
itself cannot run here): an operator imports a realm's members, who then log in to Portail with their
Keycloak password (checked once against the realm, then never again); and a hoster's realm gets Portail
as its upstream identity provider."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.keycloak import FakeClient, FakeKeycloak, FakeUser
from tests.fakes.server import serve
from tests.journeys.conftest import Deployment

ORGANIZATIONS = """
[[organizations]]
slug = "tiess"
name = "TIESS"
kind = "organization"
"""

LINKED_INSTANCE = """
[[hosters]]
slug = "hebergeur"
name = "Hébergeur"
website = "https://hebergeur.example"
contact_email = "technique@hebergeur.example"
charter_version = "2026-11"

[[instances]]
slug = "royaume-hebergeur"
name = "Keycloak de l’hébergeur"
software = "other"
base_url = "{url}"
hoster = "hebergeur"
scope = "central"
redirect_uris = ["{url}/realms/coop/broker/encommun/endpoint"]
backchannel_logout_uri = "{url}/realms/coop/protocol/openid-connect/logout/backchannel-logout"
client_secret_env = "HEBERGEUR_REALM_SECRET"
"""

REALM_SECRET = "secret-du-client-portail-du-royaume"


@pytest.fixture
def keycloak() -> Iterator[tuple[FakeKeycloak, str]]:
    fake = FakeKeycloak()
    realm = fake.realm("coop")
    realm.clients["portail-import"] = FakeClient("admin-secret", service_account=True)
    realm.clients["portail-bridge"] = FakeClient("bridge-secret", direct_access=True)
    realm.users += [
        FakeUser("alice", "Alice@Coop.example", "Mot de passe d’Alice", "Alice", "Roy", groups=["tiess", "Staff"]),
        FakeUser("bob", "bob@coop.example", "Mot de passe de Bob", "Bob", "", enabled=False),
        FakeUser("carol", None, "sans courriel"),
        FakeUser("dave", "dave@coop.example", "Mot de passe de Dave", email_verified=False),
    ]
    realm.users += [FakeUser(f"membre{i}", f"membre{i}@coop.example", "x") for i in range(150)]
    with serve(fake) as url:
        yield fake, url


def kc_import(deployment: Deployment, url: str, *args: str, secret: str = "admin-secret") -> tuple[int, str, str]:
    deployment.env["KC_IMPORT_SECRET"] = secret
    done = deployment.cli(
        "keycloak", "import", "--server-url", url, "--realm", "coop", "--client-id", "portail-import",
        "--client-secret-env", "KC_IMPORT_SECRET", "--timeout", "2", *args, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def stored_hash(deployment: Deployment, email: str) -> str:
    """The member's stored hash, only *read* (SQLite, read-only) to see it became Portail's argon2id:
    nothing public says which hash a member has, and nothing here is written by hand."""
    with sqlite3.connect(f"file:{deployment.var / 'portail.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT password_hash FROM member WHERE email_key = ?", (email.casefold(),)).fetchone()
    return str(row[0])


def with_bridge(deployment: Deployment, url: str, timeout: str = "2") -> None:
    deployment.env.update(
        {
            "PORTAIL_KEYCLOAK_SERVER_URL": url,
            "PORTAIL_KEYCLOAK_REALM": "coop",
            "PORTAIL_KEYCLOAK_CLIENT_ID": "portail-bridge",
            "PORTAIL_KEYCLOAK_CLIENT_SECRET": "bridge-secret",
            "PORTAIL_KEYCLOAK_TIMEOUT_SECONDS": timeout,
        }
    )


def test_realm_members_log_in_with_their_keycloak_password_checked_once(
    deployment: Deployment, keycloak: tuple[FakeKeycloak, str]
) -> None:
    """Journey: an operator imports a Keycloak realm (dry run first, then twice for real); a member logs
    in with their Keycloak password, which Keycloak checks once; afterwards Portail alone knows it."""
    fake, url = keycloak
    deployment.write_instances(ORGANIZATIONS)
    with_bridge(deployment, url)
    deployment.start()

    code, out, _err = kc_import(deployment, url, "--dry-run", "--json")
    dry = json.loads(out)
    assert code == 3 and dry["dry_run"] and dry["created"] == 153
    assert [(r["line"], r["reason"]) for r in dry["refused"]] == [(3, "Keycloak account without an email address.")]
    listed = json.loads(deployment.cli("users", "list", "--json").stdout)
    assert [m["email"] for m in listed] == [deployment.admin_email]

    code, out, _err = kc_import(deployment, url, "--json")
    assert json.loads(out)["created"] == 153
    code, out, _err = kc_import(deployment, url, "--json")
    again = json.loads(out)
    assert again["created"] == 0 and len(again["existing"]) == 153
    listed = {m["email"]: m for m in json.loads(deployment.cli("users", "list", "--json").stdout)}
    assert listed["Alice@coop.example"]["name"] == "Alice Roy" and listed["Alice@coop.example"]["verified"]
    assert listed["bob@coop.example"]["disabled"] and not listed["dave@coop.example"]["verified"]

    visitor = deployment.visitor()
    wrong = visitor.submit("/login", data={"email": "alice@coop.example", "password": "pas le bon"})
    assert wrong.status_code == 401 and fake.password_grants == 1
    visitor.login("alice@coop.example", "Mot de passe d’Alice")
    assert fake.password_grants == 2
    assert stored_hash(deployment, "alice@coop.example").startswith("$argon2id$")
    assert "TIESS" in visitor.follow(visitor.get("/organizations")).text

    fake.mode = "error"  # Keycloak is gone: Portail no longer needs it for Alice
    deployment.visitor().login("alice@coop.example", "Mot de passe d’Alice")
    assert fake.password_grants == 2

    fake.mode = "ok"
    bob = {"email": "bob@coop.example", "password": "Mot de passe de Bob"}
    refused = deployment.visitor().submit("/login", data=bob)
    assert refused.status_code == 401  # disabled in Keycloak, disabled here


@pytest.mark.parametrize("mode", ["error", "hang"])
def test_keycloak_down_at_first_login_asks_to_retry_and_counts_no_failure(
    deployment: Deployment, keycloak: tuple[FakeKeycloak, str], mode: str
) -> None:
    """Journey: Keycloak fails or hangs while a migrated member logs in for the first time; they are told
    to try later or choose a new password, never locked out; once Keycloak is back, they log in."""
    fake, url = keycloak
    with_bridge(deployment, url, timeout="1")
    deployment.start()
    kc_import(deployment, url)
    fake.mode, fake.hang_seconds = mode, 3.0
    visitor = deployment.visitor()
    for _attempt in range(7):  # more than login_failures_before_delay
        page = visitor.submit("/login", data={"email": "dave@coop.example", "password": "Mot de passe de Dave"})
        assert page.status_code == 503
        assert "ne peut pas être vérifié pour le moment" in page.text
        assert "/password/forgot" in page.text
    fake.mode = "ok"
    visitor.login("dave@coop.example", "Mot de passe de Dave")


def test_keycloak_import_failures_are_explained_and_import_nothing(
    deployment: Deployment, keycloak: tuple[FakeKeycloak, str]
) -> None:
    """Journey: the operator's import meets a wrong secret, an unknown realm, a failing, hanging or
    inconsistently paginating Keycloak; each is explained on one line and no member is imported."""
    fake, url = keycloak
    code, _out, err = kc_import(deployment, url, secret="mauvais")
    assert code == 1 and "(401)" in err
    done = deployment.cli(
        "keycloak", "import", "--server-url", url, "--realm", "inconnu", "--client-id", "portail-import",
        "--client-secret-env", "KC_IMPORT_SECRET", check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "Keycloak realm not found: inconnu" in done.stderr
    fake.mode = "error"
    assert "Keycloak answered 500" in kc_import(deployment, url)[2]
    fake.mode, fake.hang_seconds = "hang", 5.0
    assert "unreachable or too slow" in kc_import(deployment, url)[2]
    fake.mode, fake.shuffle_pages = "ok", True
    code, _out, err = kc_import(deployment, url)
    assert code == 1 and "announced 154 accounts but listed 153" in err
    assert json.loads(deployment.cli("users", "list", "--json").stdout) == []


def realm_link(deployment: Deployment, url: str, *args: str, admin_secret: str = "admin-secret") -> tuple[int, str]:
    deployment.env["KC_ADMIN_SECRET"] = admin_secret
    done = deployment.cli(
        "keycloak", "link-realm", "--server-url", url, "--realm", "coop", "--admin-client-id", "portail-import",
        "--admin-secret-env", "KC_ADMIN_SECRET", "--instance", "royaume-hebergeur", *args, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_a_hosters_realm_gets_portail_as_upstream_identity(
    deployment: Deployment, keycloak: tuple[FakeKeycloak, str], tmp_path: Path
) -> None:
    """Journey: a hoster keeps its Keycloak realm; the operator links it to Portail (dry run, link, link
    again, unlink), with the secret of the instance's Portail client from instances.toml."""
    fake, url = keycloak
    deployment.write_instances(LINKED_INSTANCE.format(url=url))
    deployment.env["HEBERGEUR_REALM_SECRET"] = REALM_SECRET
    deployment.start()
    realm = fake.realms["coop"]

    code, out = realm_link(deployment, url, admin_secret="mauvais")
    assert code == 1 and "(401)" in out

    code, out = realm_link(deployment, url, "--dry-run")
    assert code == 0 and "identity provider encommun: create" in out and not realm.idps

    code, out = realm_link(deployment, url)
    assert code == 0 and "mapper encommun-groups: create" in out
    idp = realm.idps["encommun"]
    config = idp["config"]
    assert idp["providerId"] == "oidc" and idp["enabled"]
    assert config["clientId"] == "royaume-hebergeur" and config["clientSecret"] == REALM_SECRET
    assert config["metadataDescriptorUrl"] == f"{deployment.base_url}/.well-known/openid-configuration"
    discovery = deployment.visitor().get("/.well-known/openid-configuration").json()
    assert config["issuer"] == discovery["issuer"]
    assert config["authorizationUrl"] == discovery["authorization_endpoint"]
    assert config["tokenUrl"] == discovery["token_endpoint"]
    assert config["jwksUrl"] == discovery["jwks_uri"]
    assert (config["pkceEnabled"], config["pkceMethod"], config["backchannelSupported"]) == ("true", "S256", "true")
    claims = {m["config"]["claim"]: m["config"]["user.attribute"] for m in realm.mappers["encommun"]}
    assert claims == {"email": "email", "name": "firstName", "groups": "encommun_groups"}

    assert realm_link(deployment, url) == (0, "Rien à changer / nothing to change\n")

    idp["config"]["pkceEnabled"] = "false"  # someone changed it by hand in Keycloak's console
    assert "identity provider encommun: update" in realm_link(deployment, url)[1]
    assert realm.idps["encommun"]["config"]["pkceEnabled"] == "true"
    assert realm.idps["encommun"]["config"]["clientSecret"] == REALM_SECRET

    code, out = realm_link(deployment, url, "--unlink", "--dry-run")
    assert "delete" in out and "encommun" in realm.idps
    assert realm_link(deployment, url, "--unlink")[0] == 0 and not realm.idps

    deployment.env["HEBERGEUR_REALM_SECRET"] = "pas-le-secret"
    code, out = realm_link(deployment, url)
    assert code == 1 and "not the secret of the client of instance royaume-hebergeur" in out
