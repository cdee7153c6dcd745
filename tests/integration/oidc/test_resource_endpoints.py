"""UserInfo (OIDC Core §5.3, RFC 6750), revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.consent import access_log
from portail.oidc import usage
from portail.oidc.models import DataAccess, Grant, SessionClient
from tests.conftest import BASE_URL
from tests.oidc_flow import Flow, basic, make_client, rows


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_userinfo_answers_get_and_post_with_the_claims_of_the_scopes(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    issued = Flow(client, client_id, secret, scope="openid email").tokens()
    got = client.get("/userinfo", headers=_bearer(issued["access_token"]))
    assert got.status_code == 200, got.text
    assert got.json()["email"] == "alice@example.org"
    assert "name" not in got.json()
    posted = client.post("/userinfo", data={"access_token": issued["access_token"]})
    assert posted.status_code == 200 and posted.json() == got.json()
    header_post = client.post("/userinfo", headers=_bearer(issued["access_token"]))
    assert header_post.json() == got.json()
    # As the member's access log reads them (this node's counts of the last second included).
    logged = client.app.state.db.call(access_log.entries, member.id or 0)  # type: ignore[attr-defined]
    assert {(a.kind, a.count) for a in logged} == {("token", 1), ("userinfo", 3)}
    assert {(a.kind, a.count) for a in rows(settings, DataAccess)} == {("token", 1), ("userinfo", 3)}
    assert [(s.client_id, s.member_id) for s in rows(settings, SessionClient)] == [(client_id, member.id)]


def test_userinfo_refuses_missing_invalid_and_double_tokens(
    client: TestClient, settings: Settings, member: Member
) -> None:
    missing = client.get("/userinfo")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    bad = client.get("/userinfo", headers=_bearer("abc.def.ghi"))
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    client_id, secret = make_client(settings)
    issued = Flow(client, client_id, secret).tokens()
    both = client.post("/userinfo", data={"access_token": issued["access_token"]}, headers=_bearer("x"))
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_userinfo_needs_the_openid_scope(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    issued = Flow(client, client_id, secret, scope="profile").tokens()
    assert "id_token" not in issued
    response = client.get("/userinfo", headers=_bearer(issued["access_token"]))
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"


def test_the_claims_parameter_releases_a_requested_claim_to_userinfo(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    claims = '{"userinfo": {"email": {"essential": true}, "quota": null}}'
    issued = Flow(client, client_id, secret, scope="openid").tokens(claims=claims)
    body = client.get("/userinfo", headers=_bearer(issued["access_token"])).json()
    assert body["email"] == "alice@example.org"
    assert "quota" not in body


def test_revoking_an_access_token_makes_it_unusable(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    issued = Flow(client, client_id, secret).tokens()
    response = client.post("/revoke", data={"token": issued["access_token"]}, headers=basic(client_id, secret))
    assert response.status_code == 200
    assert client.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 401
    assert Flow(client, client_id, secret).refresh(issued["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_revokes_its_grant(client: TestClient, settings: Settings, member: Member) -> None:
    """RFC 7009 §2.1: access tokens of the same grant SHOULD be invalidated too."""
    client_id, secret = make_client(settings)
    assert secret is not None
    issued = Flow(client, client_id, secret).tokens()
    response = client.post(
        "/revoke",
        data={"token": issued["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic(client_id, secret),
    )
    assert response.status_code == 200
    assert all(g.revoked_at is not None for g in rows(settings, Grant))
    assert client.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 401


def test_revocation_of_unknown_tokens_answers_200_and_other_errors_are_exact(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    assert client.post("/revoke", data={"token": "unknown"}, headers=basic(client_id, secret)).status_code == 200
    wrong = client.post("/revoke", data={"token": "x"}, headers=basic(client_id, "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    missing = client.post("/revoke", data={}, headers=basic(client_id, secret))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    hint = client.post("/revoke", data={"token": "x", "token_type_hint": "cookie"}, headers=basic(client_id, secret))
    assert hint.status_code == 400 and hint.json()["error"] == "unsupported_token_type"


def test_a_client_cannot_revoke_another_clients_token(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    other_id, other_secret = make_client(settings, client_id="other")
    assert other_secret is not None
    issued = Flow(client, client_id, secret).tokens()
    response = client.post("/revoke", data={"token": issued["refresh_token"]}, headers=basic(other_id, other_secret))
    assert response.status_code == 400
    assert all(g.revoked_at is None for g in rows(settings, Grant))


def test_introspection_describes_active_tokens_to_their_client(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    issued = Flow(client, client_id, secret).tokens()
    access = client.post("/introspect", data={"token": issued["access_token"]}, headers=basic(client_id, secret))
    assert access.status_code == 200
    body = access.json()
    assert body["active"] is True and body["client_id"] == client_id and body["scope"] == "openid profile email"
    refresh = client.post("/introspect", data={"token": issued["refresh_token"]}, headers=basic(client_id, secret))
    assert refresh.json()["active"] is True and refresh.json()["token_type"] == "refresh_token"
    client.post("/revoke", data={"token": issued["refresh_token"]}, headers=basic(client_id, secret))
    after = client.post("/introspect", data={"token": issued["access_token"]}, headers=basic(client_id, secret))
    assert after.json() == {"active": False}


def test_introspection_is_for_authenticated_clients_and_their_own_tokens(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    public_id, _ = make_client(settings, client_id="spa", public=True)
    other_id, other_secret = make_client(settings, client_id="other")
    assert other_secret is not None
    issued = Flow(client, client_id, secret).tokens()
    public = client.post("/introspect", data={"token": issued["access_token"], "client_id": public_id})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    foreign = client.post("/introspect", data={"token": issued["access_token"]}, headers=basic(other_id, other_secret))
    assert foreign.json() == {"active": False}
    junk = client.post("/introspect", data={"token": "junk"}, headers=basic(other_id, other_secret))
    assert junk.json() == {"active": False}


def test_a_resource_audience_may_introspect_the_access_token(
    client: TestClient, settings: Settings, member: Member
) -> None:
    api_id, api_secret = make_client(settings, client_id="api", grant_types=["client_credentials"], redirect_uris=[])
    client_id, secret = make_client(settings, resource_audiences=["api"])
    assert api_secret is not None
    issued = Flow(client, client_id, secret).tokens()
    response = client.post("/introspect", data={"token": issued["access_token"]}, headers=basic(api_id, api_secret))
    assert response.json()["active"] is True
    assert response.json()["aud"] == [client_id, "api"]


def _userinfo_count(settings: Settings) -> int:
    return sum(a.count for a in rows(settings, DataAccess) if a.kind == "userinfo")


def test_access_counts_reach_the_database_in_the_background_and_when_the_node_stops(
    settings: Settings, member: Member
) -> None:
    """No page reads the log here: the counts are written by the node's once-a-second task, and the
    ones still pending when it stops are written by the stop."""
    app = create_app(settings, migrate=False)
    counts = usage.counts_of_database(app.state.db)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        client_id, secret = make_client(settings)
        issued = Flow(client, client_id, secret, scope="openid").tokens()
        assert client.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 200
        deadline = time.monotonic() + 20
        while _userinfo_count(settings) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _userinfo_count(settings) == 1  # written by the background task
        assert client.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 200
        pending_at_stop = counts.pending()
    assert _userinfo_count(settings) == 2
    assert pending_at_stop in (0, 1) and counts.pending() == 0
