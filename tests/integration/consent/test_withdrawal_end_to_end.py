"""Withdrawing consent, end to end through the real OpenID Connect flow (Law 25, issue 7).

A tool (a confidential client with a back-channel logout endpoint served by a real HTTP server on
127.0.0.1) obtains tokens through the authorization-code flow after the member consents on
Portail's consent page. The member then withdraws that consent on "Mes données": introspection
answers ``active: false`` for both tokens, the refresh token no longer works, the tool receives a
valid back-channel logout token for the session it was given, and the next authorization request
asks for consent again instead of going straight back to the tool.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc.models import ConsentEvent
from tests.integration.consent.forms import submit
from tests.oidc_flow import REDIRECT_URI, Flow, basic, decode, make_client, query_of, rows
from tests.stub_server import StubServer

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _walk_to_consent(flow: Flow) -> str:
    """Follow the authorization request until the consent page; its location (fails if none is asked)."""
    response = flow.authorize()
    for _ in range(4):
        assert response.status_code in (302, 303), response.text
        location = response.headers["location"]
        assert not location.startswith(REDIRECT_URI), "the tool got a code without consent being asked"
        if location.startswith("/authorize/consent/"):
            return location
        response = flow.log_in(location) if location.startswith("/login") else flow.http.get(location)
    raise AssertionError("no consent page was shown")


def _introspect(client: TestClient, flow: Flow, token: str) -> bool:
    assert flow.secret is not None
    answer = client.post("/introspect", data={"token": token}, headers=basic(flow.client_id, flow.secret))
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["active"])


def _logout_tokens(stub: StubServer, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [parse_qs(body.decode())["logout_token"][0] for path, body in stub.posts if path == "/backchannel"]
        if found:
            return found
        time.sleep(0.05)
    return []


def test_grant_then_withdraw_revokes_logs_the_tool_out_and_asks_again(
    client: TestClient, settings: Settings, member: Member, stub_server: StubServer
) -> None:
    stub_server.route("/backchannel", body="", status=200)
    client_id, secret = make_client(
        settings, name="Outil témoin", client_id="temoin", backchannel_logout_uri=f"{stub_server.url}/backchannel"
    )
    flow = Flow(client, client_id, secret)

    # Grant: the first login to the tool asks for consent, then the tool gets its tokens.
    consent_page = _walk_to_consent(flow)
    answered = flow.consent(consent_page)
    assert answered.status_code in (302, 303) and answered.headers["location"].startswith(REDIRECT_URI)
    issued = flow.token(query_of(answered.headers["location"])["code"])
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    id_token = decode(client, tokens["id_token"])
    assert _introspect(client, flow, tokens["access_token"]) and _introspect(client, flow, tokens["refresh_token"])

    # Withdraw on "Mes données".
    withdrawn = submit(client, "/account/data", f"/account/data/tools/{client_id}/withdraw", {})
    assert withdrawn.status_code == 303

    # The tool's tokens are dead.
    assert not _introspect(client, flow, tokens["access_token"])
    assert not _introspect(client, flow, tokens["refresh_token"])
    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401

    # The tool received a valid back-channel logout token for the session it knew.
    received = _logout_tokens(stub_server)
    assert len(received) == 1, stub_server.posts
    claims = decode(client, received[0])
    assert claims["iss"] == settings.issuer and claims["aud"] in (client_id, [client_id])
    assert claims["sub"] == id_token["sub"] and claims["sid"] == id_token["sid"]
    assert LOGOUT_EVENT in claims["events"] and "nonce" not in claims and claims["jti"]
    headers = next(h for method, path, h in stub_server.hits if method == "POST" and path == "/backchannel")
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")

    # The member is still logged in to Portail, but the tool must ask for consent again.
    again = Flow(client, client_id, secret)
    second_page = _walk_to_consent(again)
    assert again.consent(second_page).headers["location"].startswith(REDIRECT_URI)

    ledger = [e.action for e in rows(settings, ConsentEvent) if e.client_id == client_id]
    assert ledger == ["granted", "withdrawn", "granted"]


def test_a_code_issued_before_the_withdrawal_never_becomes_a_token(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings, name="Outil lent", client_id="lent")
    flow = Flow(client, client_id, secret)
    first = flow.tokens()  # consent given, tokens issued
    assert first["access_token"]
    pending = Flow(client, client_id, secret)
    code = pending.code()["code"]  # consent remembered: a code straight away
    assert submit(client, "/account/data", f"/account/data/tools/{client_id}/withdraw", {}).status_code == 303
    late = pending.token(code)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    # Nothing was written for the late exchange: the last ledger event is still the withdrawal.
    events = rows(settings, ConsentEvent)
    assert events[-1].action == "withdrawn"
    assert [e.action for e in events if e.client_id == client_id] == ["granted", "withdrawn"]
