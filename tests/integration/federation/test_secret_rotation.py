"""Safe rotation of a node's client secret, through the pages and the API, with the mails it sends:
only the hoster's administrators rotate; the previous secret keeps working for
``secret_rotation_grace_hours`` unless "révoquer immédiatement" is chosen (checked at the real token
endpoint); a form submitted twice rotates once; and a node may authenticate with ``private_key_jwt``
and keys at its ``jwks_uri`` instead (RFC 7523 §3)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import create_member, csrf_from, login, outbox
from tests.integration.federation.test_api import P, call, personal_token
from tests.integration.federation.test_hoster_flow import client_row
from tests.integration.federation.test_node_lifecycle import hoster_and_admin
from tests.oidc_flow import client_assertion, token_with_assertion
from tests.stub_server import StubServer


def pushing_node(client: TestClient, alice: str, admin: str, hoster: str, stub: StubServer, **extra: Any) -> Any:
    """A Passerelles node (it pushes: its client has client_credentials), proven and approved."""
    body = {"hoster": hoster, "software": "passerelles", "name": "Passerelles TIESS", "base_url": stub.url,
            "scope": "organization", "organization": "tiess", "redirect_uris": [f"{stub.url}/callback"]}  # fmt: skip
    body.update(extra)
    registered = call(client, "POST", f"{P}/instances", alice, body)
    assert registered.status_code == 201, registered.text
    node = registered.json()
    stub.route("/.well-known/portail-challenge", node["challenge"]["token"])
    call(client, "POST", f"{P}/instances/{node['slug']}/verify", alice)
    assert call(client, "POST", f"{P}/instances/{node['slug']}/approve", admin).status_code == 200
    return node


def token(client: TestClient, client_id: str, secret: str) -> int:
    answer = client.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return answer.status_code


def rotate(client: TestClient, slug: str, **extra: str) -> httpx.Response:
    page = client.get(f"/federation/instances/{slug}")
    seen = re.search(r'name="rotated_at" value="([^"]*)"', page.text)
    assert seen, page.text
    data = {"csrf_token": csrf_from(page.text), "rotated_at": unescape(seen.group(1)), **extra}
    return client.post(f"/federation/instances/{slug}/secret", data=data)


def shown_secret(response: httpx.Response) -> str:
    found = re.search(r'id="client-secret">([^<]+)<', response.text)
    assert found, response.text
    return found.group(1)


def test_a_rotated_secret_keeps_working_for_the_grace_period_unless_revoked(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = pushing_node(client, alice, admin, hoster, stub_server)["slug"]
    first = rotate(client, slug)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    client_id, old = re.search(r'id="client-id">([^<]+)<', first.text).group(1), shown_secret(first)  # type: ignore[union-attr]
    assert token(client, client_id, old) == 200

    page = client.get(f"/federation/instances/{slug}")
    form = {"csrf_token": csrf_from(page.text),
            "rotated_at": unescape(re.search(r'name="rotated_at" value="([^"]*)"', page.text).group(1))}  # type: ignore[union-attr]  # fmt: skip
    rotated = client.post(f"/federation/instances/{slug}/secret", data=form)
    assert rotated.status_code == 200
    new = shown_secret(rotated)
    assert token(client, client_id, new) == 200 and token(client, client_id, old) == 200  # both, for a while
    again = client.post(f"/federation/instances/{slug}/secret", data=form)  # the same form, sent twice
    assert again.status_code == 409 and "formulaire envoyé deux fois" in again.text
    assert token(client, client_id, new) == 200  # nothing rotated the second time
    assert "l’ancien secret reste valide jusqu’au" in client.get(f"/federation/instances/{slug}").text
    mails = [m for m in outbox(settings) if "Secret renouvelé" in str(m["Subject"])]
    assert {str(m["To"]) for m in mails} == {"tech@coop.example", "alice@example.org"}
    assert "reste valide" in mails[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]

    revoked = rotate(client, slug, revoke_now="on")
    assert revoked.status_code == 200
    newest = shown_secret(revoked)
    assert token(client, client_id, newest) == 200
    assert token(client, client_id, new) == 401 and token(client, client_id, old) == 401
    assert any("révoqué immédiatement" in m.get_body(("plain",)).get_content() for m in outbox(settings)  # type: ignore[union-attr]
               if "Secret renouvelé" in str(m["Subject"]))  # fmt: skip

    # a hoster-member runs nodes but does not rotate their secrets
    create_member(settings, "bob@example.org", "Bob")
    people = client.get(f"/federation/hosters/{hoster}")
    added = client.post(
        f"/federation/hosters/{hoster}/people",
        data={"csrf_token": csrf_from(people.text), "email": "bob@example.org", "role": "hoster-member"},
    )
    assert added.status_code == 303
    with TestClient(app, base_url="http://localhost:8000", follow_redirects=False) as bob:
        login(bob, "bob@example.org")
        bob_token = personal_token(bob, ["federation:read", "federation:write"])
        assert "Seuls les administrateurs de l’hébergeur" in bob.get(f"/federation/instances/{slug}").text
        assert call(bob, "POST", f"{P}/instances/{slug}/secret", bob_token).status_code == 403
    assert token(client, client_id, newest) == 200
    api = call(client, "POST", f"{P}/instances/{slug}/secret", alice, {"revoke_previous": "yes"})
    assert api.status_code == 400  # not a boolean


def test_a_node_can_authenticate_with_keys_at_its_jwks_uri(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    key = RSAKey.generate_key(2048, parameters={"kid": "node-1", "use": "sig", "alg": "RS256"})
    stub_server.route("/jwks.json", {"keys": [key.as_dict(private=False)]})
    elsewhere = call(client, "POST", f"{P}/instances", alice, {
        "hoster": hoster, "software": "passerelles", "name": "X", "base_url": stub_server.url, "scope": "organization",
        "organization": "tiess", "redirect_uris": [f"{stub_server.url}/callback"],
        "jwks_uri": "https://keys.elsewhere.example/jwks.json"})  # fmt: skip
    assert elsewhere.status_code == 400 and "jwks_uri" in elsewhere.json()["error_description"]
    node = pushing_node(client, alice, admin, hoster, stub_server, jwks_uri=f"{stub_server.url}/jwks.json")
    configuration = call(client, "POST", f"{P}/instances/{node['slug']}/secret", alice).json()
    client_id = configuration["client_id"]
    row = client_row(settings, client_id)
    assert (row.token_endpoint_auth_method, row.jwks_uri) == ("private_key_jwt", f"{stub_server.url}/jwks.json")
    assert "private_key_jwt" in configuration["snippets"][-1]["text"]
    answer = token_with_assertion(client, client_assertion(client_id, key, "node-1"))
    assert answer.status_code == 200, answer.text
    back = call(client, "PATCH", f"{P}/instances/{node['slug']}", alice, {"jwks_uri": ""})
    assert (
        back.status_code == 200 and client_row(settings, client_id).token_endpoint_auth_method == "client_secret_basic"
    )
