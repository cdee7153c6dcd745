"""What suspension does outside the registry (the member's portal and the provider's authorization
endpoint), and a hoster's ``client_credentials`` client through the real token endpoint
(RFC 6749 §4.4) calling the federation API."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.federation import nodes
from portail.federation.models import Instance
from portail.federation.rules import Actor
from portail.oidc.models import Consent
from tests.conftest import create_member, csrf_from, login
from tests.federation_factories import add_hoster, add_instance, add_membership, add_organization, in_db


def authorize_url(instance: Instance) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": instance.client_id,
        "redirect_uri": instance.redirect_uris[0],
        "response_type": "code",
        "scope": "openid profile",
        "state": "s",
        "nonce": "n",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return "/authorize?" + urlencode(query)


def test_a_suspended_instance_leaves_the_portal_and_refuses_logins(client: TestClient, settings: Settings) -> None:
    create_member(settings, "alice@example.org", "Alice")
    add_organization(settings, "tiess", "TIESS")
    add_membership(settings, "tiess", "alice@example.org")
    add_hoster(settings, "coop")
    add_instance(
        settings,
        "forum-tiess",
        software="discourse",
        hoster="coop",
        scope="organization",
        organization="tiess",
        status="awaiting-approval",
        base_url="https://forum.tiess.example",
    )

    def decide(action: str, reason: str = "") -> Instance:
        # A unit of work of the application (its withdrawal listeners tell the members), as its pages do.
        app_db: Database = client.app.state.db  # type: ignore[attr-defined]
        return app_db.call(lambda s: nodes.decide(s, settings, Actor.cli(), "forum-tiess", action, reason))

    instance = decide("approve")
    assert instance.status == "active" and instance.client_id
    login(client)
    assert "Forum Tiess" in client.get("/").text and "https://forum.tiess.example" in client.get("/").text
    allowed = client.get(authorize_url(instance))
    assert allowed.status_code in (302, 303), allowed.text

    def consented(session: Session) -> None:  # as the consent page records it
        member = session.exec(select(Member).where(Member.email == "alice@example.org")).one()
        session.add(
            Consent(member_id=member.id or 0, client_id=instance.client_id or "", scopes="openid", policy_version="1")
        )

    in_db(settings, consented)
    decide("suspend", "Compromis")
    home = client.get("/").text
    assert "https://forum.tiess.example" not in home  # no tile any more...
    assert "Forum Tiess est suspendu" in home  # ... but its members are told (portal's inbox preview)
    refused = client.get(authorize_url(instance))
    assert refused.status_code == 400
    assert "n’est pas (ou plus) enregistré" in refused.text

    decide("reactivate")
    assert client.get(authorize_url(instance)).status_code in (302, 303)


def test_a_hosters_client_gets_a_token_at_the_token_endpoint_and_uses_the_api(
    client: TestClient, settings: Settings
) -> None:
    create_member(settings, "alice@example.org", "Alice")
    add_hoster(settings, "coop", "alice@example.org")
    add_instance(settings, "coop-cloud", hoster="coop", scope="organization")
    login(client)
    page = client.get("/federation/hosters/coop")
    issued = client.post("/federation/hosters/coop/api-client", data={"csrf_token": csrf_from(page.text)})
    client_id = issued.text.split('id="client-id">', 1)[1].split("<", 1)[0]
    secret = issued.text.split('id="client-secret">', 1)[1].split("<", 1)[0]

    token = client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "federation:read federation:write"},
        auth=(client_id, secret),
    )
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    assert token.json()["scope"].split() == ["federation:read", "federation:write"]
    listed = client.get("/api/v1/federation/instances", headers={"Authorization": f"Bearer {access}"})
    assert [i["slug"] for i in listed.json()["instances"]] == ["coop-cloud"]

    too_much = client.post(
        "/token", data={"grant_type": "client_credentials", "scope": "federation:admin"}, auth=(client_id, secret)
    )
    assert too_much.status_code == 400 and too_much.json()["error"] == "invalid_scope"
    assert in_db(settings, lambda s: s.exec(select(Instance)).one().slug) == "coop-cloud"
