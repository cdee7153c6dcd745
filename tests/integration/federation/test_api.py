"""The federation's JSON API (``/api/v1/federation/…``) and its OpenAPI description, authenticated by
personal API tokens (created on ``/account/api-tokens``: scoped, expiring, hashed, shown once,
revocable) and by a hoster's ``client_credentials`` access token. RFC 6750 §3: a missing or bad
token is a 401 with ``WWW-Authenticate: Bearer``, a missing scope a 403 ``insufficient_scope``."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.federation import openapi
from portail.federation.models import ApiToken
from portail.oidc import clients, keys, tokens
from tests.conftest import BASE_URL, create_member, csrf_from, login
from tests.federation_factories import add_hoster, add_instance, add_organization, in_db
from tests.stub_server import StubServer

P = "/api/v1/federation"


def personal_token(client: TestClient, scopes: list[str], name: str = "script", days: str = "30") -> str:
    page = client.get("/account/api-tokens")
    response = client.post(
        "/account/api-tokens",
        data={"csrf_token": csrf_from(page.text), "name": name, "scopes": scopes, "days": days},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    match = re.search(r'id="token-value">(pat_[^<]+)<', response.text)
    assert match, response.text
    return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: TestClient, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    return client.request(method, path, headers=bearer(token), json=body)


def test_openapi_document_describes_the_federation_api(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"get", "post"} <= set(doc["paths"][f"{P}/instances"])
    for path in (
        f"{P}/instances/{{slug}}/verify",
        f"{P}/instances/{{slug}}/approve",
        f"{P}/instances/{{slug}}/suspend",
        f"{P}/instances/{{slug}}/retire",
        f"{P}/instances/{{slug}}/secret",
        f"{P}/hosters",
        f"{P}/directory",
    ):
        assert path in doc["paths"], path
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["hosterClient"]["flows"]["clientCredentials"]["tokenUrl"] == f"{BASE_URL}/token"
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', client.get("/api/v1/openapi.json").text))
    assert refs and refs <= set(doc["components"]["schemas"])
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (path, method)


def test_calls_without_a_valid_token_are_refused_as_rfc6750_says(client: TestClient) -> None:
    missing = client.get(f"{P}/instances")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"] == "invalid_request"
    bad = client.get(f"{P}/instances", headers=bearer("pat_not-a-real-token"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    garbage = client.get(f"{P}/instances", headers=bearer("eyJhbGciOiJub25lIn0.e30."))
    assert garbage.status_code == 401 and garbage.json()["error"] == "invalid_token"


def test_personal_tokens_are_scoped_hashed_expiring_and_revocable(
    client: TestClient, member: Member, settings: Settings
) -> None:
    login(client)
    raw = personal_token(client, ["federation:read"])
    stored = in_db(settings, lambda s: s.exec(select(ApiToken)).one())
    assert stored.token_hash != raw and len(stored.token_hash) == 64 and raw.startswith(stored.prefix)
    assert raw not in client.get("/account/api-tokens").text  # shown once
    assert call(client, "GET", f"{P}/instances", raw).json() == {"instances": [], "count": 0}
    denied = call(client, "POST", f"{P}/hosters", raw, {"name": "x"})
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"

    admin_scope = client.post(
        "/account/api-tokens",
        data={
            "csrf_token": csrf_from(client.get("/account/api-tokens").text),
            "name": "x",
            "scopes": ["federation:admin"],
            "days": "5",
        },
    )
    assert admin_scope.status_code == 400 and "réservée" in admin_scope.text
    too_long = client.post(
        "/account/api-tokens",
        data={
            "csrf_token": csrf_from(client.get("/account/api-tokens").text),
            "name": "x",
            "scopes": ["federation:read"],
            "days": "5000",
        },
    )
    assert too_long.status_code == 400

    def expire(session):  # type: ignore[no-untyped-def]
        token = session.exec(select(ApiToken)).one()
        token.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.add(token)

    in_db(settings, expire)
    assert call(client, "GET", f"{P}/instances", raw).status_code == 401

    second = personal_token(client, ["federation:read"], name="second")
    second_id = in_db(settings, lambda s: s.exec(select(ApiToken).where(ApiToken.name == "second")).one().id)
    page = client.get("/account/api-tokens")
    revoked = client.post(f"/account/api-tokens/{second_id}/revoke", data={"csrf_token": csrf_from(page.text)})
    assert revoked.status_code == 303
    assert call(client, "GET", f"{P}/instances", second).status_code == 401


def test_the_whole_node_lifecycle_through_the_api(
    app,
    client: TestClient,
    member: Member,
    settings: Settings,
    stub_server: StubServer,  # type: ignore[no-untyped-def]
) -> None:
    add_organization(settings, "tiess", "TIESS")
    create_member(settings, "admin@example.org", "Ada Admin", is_admin=True)
    login(client)
    alice = personal_token(client, ["federation:read", "federation:write"])
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as other:
        login(other, "admin@example.org")
        admin = personal_token(other, ["federation:read", "federation:admin"])

    applied = call(
        client,
        "POST",
        f"{P}/hosters",
        alice,
        {"name": "Coop API", "contact_email": "tech@coop.example", "accept_charter": True},
    )
    assert applied.status_code == 201 and applied.json()["status"] == "applied"
    assert (
        call(client, "POST", f"{P}/hosters", alice, {"name": "Sans charte", "contact_email": "a@b.example"}).status_code
        == 400
    )
    slug = applied.json()["slug"]
    assert call(client, "POST", f"{P}/hosters/{slug}/approve", alice).status_code == 403
    assert call(client, "POST", f"{P}/hosters/{slug}/approve", admin).json()["status"] == "active"

    body = {
        "hoster": slug,
        "software": "matrix",
        "name": "Chat TIESS",
        "base_url": stub_server.url,
        "scope": "organization",
        "organization": "tiess",
        "provider_identifier": "tiess",  # Synapse's idp_id for Portail on this node
        "push_notifications": True,  # a Matrix node is pulled by default; this one also pushes
    }
    not_a_flag = call(client, "POST", f"{P}/instances", alice, {**body, "push_notifications": "yes"})
    assert not_a_flag.status_code == 400 and "push_notifications" in not_a_flag.json()["error_description"]
    registered = call(client, "POST", f"{P}/instances", alice, body)
    assert registered.status_code == 201, registered.text
    node = registered.json()
    assert node["status"] == "awaiting-proof"
    assert (node["push_notifications"], node["provider_identifier"]) == (True, "tiess")
    assert node["challenge"]["url"] == f"{stub_server.url}/.well-known/portail-challenge"
    assert registered.headers["location"] == f"{P}/instances/{node['slug']}"
    assert call(client, "POST", f"{P}/instances", alice, body).status_code == 409

    failed = call(client, "POST", f"{P}/instances/{node['slug']}/verify", alice)
    assert failed.status_code == 422 and failed.json()["error"] == "verification_failed"
    assert "404" in failed.json()["error_description"]
    stub_server.route("/.well-known/portail-challenge", node["challenge"]["token"])
    verified = call(client, "POST", f"{P}/instances/{node['slug']}/verify", alice)
    assert verified.status_code == 200 and verified.json()["status"] == "awaiting-approval"

    assert call(client, "POST", f"{P}/instances/{node['slug']}/approve", alice).status_code == 403
    approved = call(client, "POST", f"{P}/instances/{node['slug']}/approve", admin)
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    secret = call(client, "POST", f"{P}/instances/{node['slug']}/secret", alice)
    assert secret.headers["cache-control"] == "no-store"
    config = secret.json()
    assert config["client_id"] == approved.json()["client_id"]
    assert [s["title"] for s in config["snippets"]] == ["Synapse: homeserver.yaml", "OpenID Connect parameters"]
    assert "backchannel_logout_enabled: true" in config["snippets"][0]["text"]
    assert 'idp_id: "tiess"' in config["snippets"][0]["text"]
    assert "scope=notifications:push" in config["snippets"][1]["text"]
    oauth = in_db(settings, lambda s: clients.get_client(s, config["client_id"]))
    assert clients.verify_secret(oauth, config["client_secret"])
    assert "client_credentials" in oauth.grant_types and "notifications:push" in oauth.scope.split()

    listed = call(client, "GET", f"{P}/instances?status=active", alice).json()
    assert [i["slug"] for i in listed["instances"]] == [node["slug"]]
    assert call(client, "GET", f"{P}/instances/{node['slug']}", alice).json()["health"] == "unknown"
    no_reason = call(client, "POST", f"{P}/instances/{node['slug']}/suspend", admin, {})
    assert no_reason.status_code == 400 and no_reason.json()["error_description"] == "A reason is required."
    suspended = call(client, "POST", f"{P}/instances/{node['slug']}/suspend", admin, {"reason": "abuse"})
    assert suspended.json()["status"] == "suspended"
    retired = call(client, "POST", f"{P}/instances/{node['slug']}/retire", alice, {"reason": "closing"})
    assert retired.json()["status"] == "retired"

    directory = client.get(f"{P}/directory").json()
    assert directory["count"] == 0


def test_bad_json_bodies_get_a_400_not_a_500(client: TestClient, member: Member) -> None:
    login(client)
    token = personal_token(client, ["federation:write"])
    for raw, status in ((b"{", 400), (b"[1,2]", 400), (b"x" * 70_000, 413)):
        response = client.post(
            f"{P}/instances", headers={**bearer(token), "Content-Type": "application/json"}, content=raw
        )
        assert response.status_code == status and response.json()["error"] == "invalid_request"
    wrong_type = call(client, "POST", f"{P}/instances", token, {"redirect_uris": "https://x.example"})
    assert wrong_type.status_code == 400


def test_a_hosters_client_credentials_token_acts_for_that_hoster_only(
    app,
    client: TestClient,
    member: Member,
    settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    login(client)
    add_hoster(settings, "coop", "alice@example.org")
    add_hoster(settings, "other")
    add_instance(settings, "coop-cloud", hoster="coop", scope="organization")
    add_instance(settings, "other-cloud", hoster="other", scope="organization")
    page = client.get("/federation/hosters/coop")
    issued = client.post("/federation/hosters/coop/api-client", data={"csrf_token": csrf_from(page.text)})
    assert issued.status_code == 200
    client_id = re.search(r'id="client-id">([^<]+)<', issued.text).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="client-secret">([^<]+)<', issued.text).group(1)  # type: ignore[union-attr]

    def token_for(session):  # type: ignore[no-untyped-def]
        oauth = clients.get_client(session, client_id)
        assert oauth is not None and clients.verify_secret(oauth, secret)
        assert oauth.grant_types == ["client_credentials"]
        scope = "federation:read federation:write"
        return tokens.issue_access_token(keys.ring_of(session), settings, oauth, sub=client_id, scope=scope).token

    access = in_db(settings, token_for)
    listed = call(client, "GET", f"{P}/instances", access).json()
    assert [i["slug"] for i in listed["instances"]] == ["coop-cloud"]
    assert call(client, "GET", f"{P}/instances/other-cloud", access).status_code == 403
    assert call(client, "POST", f"{P}/hosters", access, {"name": "x"}).status_code == 403
    reissued = client.post(
        "/federation/hosters/coop/api-client",
        data={"csrf_token": csrf_from(client.get("/federation/hosters/coop").text)},
    )
    assert reissued.status_code == 200
    assert call(client, "GET", f"{P}/instances", access).status_code == 200  # re-keying keeps issued tokens

    def disable(session):  # type: ignore[no-untyped-def]
        tokens.revoke_client_tokens(session, client_id, "test")

    in_db(settings, disable)
    assert call(client, "GET", f"{P}/instances", access).status_code == 401


def test_control_characters_and_deep_nesting_are_refused_not_crashing(client: TestClient, member: Member) -> None:
    """PostgreSQL refuses NUL in text: such input must be a 4xx on both databases, never a 500."""
    login(client)
    token = personal_token(client, ["federation:read", "federation:write"])
    nul = call(client, "POST", f"{P}/instances", token, {"hoster": "co\u0000op", "name": "x"})
    assert nul.status_code == 400 and nul.json()["error"] == "invalid_request"
    deep = client.post(
        f"{P}/instances",
        headers={**bearer(token), "Content-Type": "application/json"},
        content=b"[" * 50_000 + b"]" * 50_000,
    )
    assert deep.status_code in (400, 413)
    assert call(client, "GET", f"{P}/instances/bad%00slug", token).status_code == 404
    assert call(client, "GET", f"{P}/instances?hoster=%00", token).status_code == 400  # NUL in a query: 400
    assert call(client, "GET", f"{P}/hosters/%00", token).status_code == 404
    assert client.get("/federation/instances/%00").status_code == 404
    assert client.get("/federation/organizations/%00").status_code == 404  # NUL in a path: 404 everywhere
    assert client.get("/federation/statoolinfos/services/%00.properties").status_code == 404
    assert client.get("/federation/directory.json?hoster=%00&organization=%00").status_code == 400
    page = client.get("/federation/hosters/apply")
    form = client.post(
        "/federation/hosters/apply",
        data={
            "csrf_token": csrf_from(page.text),
            "name": "Co\x00op",
            "contact_email": "a@b.example",
            "accept_charter": "on",
        },
    )
    assert form.status_code == 400


def test_the_served_openapi_document_is_the_file_with_this_portails_address(client: TestClient) -> None:
    served = client.get("/api/v1/openapi.json").json()
    written = json.loads((Path(openapi.__file__).parent / "openapi.json").read_text(encoding="utf-8"))
    written["servers"] = [{"url": BASE_URL}]
    written["components"]["securitySchemes"]["hosterClient"]["flows"]["clientCredentials"]["tokenUrl"] = (
        f"{BASE_URL}/token"
    )
    assert served == written
