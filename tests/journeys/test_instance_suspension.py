"""Journey: the federation suspends a tool; its members are logged out of it and told.

The operator declares a Passerelles instance in instances.toml with a ``backchannel_logout_uri`` on
a loopback receiver (standing in for the tool) and starts Portail. A member signs up and logs in to
the tool (authorization code flow). The printed administrator suspends the instance from the
federation administration (``/federation/admin`` → the node's page → "Suspendre", with a reason).
The tool receives a back-channel logout token for the member's session, valid against Portail's
JWKS (``iss``, ``aud``, ``sub`` and ``sid`` of the member's ID token, the back-channel ``events``),
and the member finds in their inbox that the tool is suspended. On today's main the tokens were
revoked but nothing was sent, and nobody was told.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from tests.journeys.conftest import Deployment, Visitor, sign_up
from tests.oidc_flow import Flow, basic, decode
from tests.stub_server import StubServer

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def instances(tool: str) -> str:
    return f"""
[[hosters]]
slug = "projet-collectif"
name = "Projet collectif"
contact_email = "technique@projetcollectif.example"

[[instances]]
slug = "passerelles"
name = "Passerelles"
software = "passerelles"
base_url = "{tool}"
hoster = "projet-collectif"
scope = "central"
redirect_uris = ["{tool}/auth/callback"]
backchannel_logout_uri = "{tool}/auth/backchannel-logout"
"""


def wait_for_post(receiver: StubServer, path: str, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [body for at, body in receiver.posts if at == path]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing was posted to {path}")


def member_logged_in_to_the_tool(deployment: Deployment, receiver: StubServer) -> tuple[Visitor, dict[str, Any], str]:
    """Portail started with the tool declared; a member signed up and logged in to the tool.
    Returns the member's browser, their ID token's claims and the tool's client secret."""
    tool = receiver.url
    receiver.route("/auth/backchannel-logout", b"")
    deployment.write_instances(instances(tool))
    done = deployment.cli("instances", "sync")
    secret = next(line.split("secret : ")[1].strip() for line in done.stdout.splitlines() if "secret : " in line)
    deployment.start()
    member = sign_up(deployment, "samuel@example.org", name="Samuel Roy")
    member.login("samuel@example.org")
    flow = Flow(member.http, "passerelles", secret, redirect_uri=f"{tool}/auth/callback")  # type: ignore[arg-type]
    id_token = decode(member.http, flow.tokens()["id_token"])  # type: ignore[arg-type]
    assert receiver.posts == []
    return member, id_token, secret


def logout_claims(member: Visitor, receiver: StubServer) -> dict[str, Any]:
    """The verified claims of the logout token the tool received."""
    body = wait_for_post(receiver, "/auth/backchannel-logout")
    return decode(member.http, parse_qs(body.decode())["logout_token"][0])  # type: ignore[arg-type]


def test_suspending_a_tool_logs_its_members_out_by_back_channel_and_tells_them(
    deployment: Deployment, stub_server: StubServer
) -> None:
    member, id_token, secret = member_logged_in_to_the_tool(deployment, stub_server)

    admin = deployment.admin()
    desk = admin.get("/federation/admin")
    assert 'href="/federation/instances/passerelles"' in desk.text
    answer = admin.submit(
        "/federation/instances/passerelles",
        "/federation/instances/passerelles/decision",
        data={"action": "suspend", "reason": "Faille de sécurité en cours d’analyse"},
    )
    assert answer.status_code == 303, answer.text[:1000]
    assert "Nœud suspendu" in admin.get("/federation/instances/passerelles").text

    claims = logout_claims(member, stub_server)
    assert claims["iss"] == deployment.base_url and claims["aud"] in ("passerelles", ["passerelles"])
    assert claims["sub"] == id_token["sub"] and claims["sid"] == id_token["sid"]
    assert EVENT in claims["events"] and "nonce" not in claims

    refused = member.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "notifications:push"},
        headers=basic("passerelles", secret),
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    inbox = member.get("/notifications")
    assert inbox.status_code == 200
    assert "Passerelles est suspendu" in inbox.text
    assert "Vous en avez été déconnecté" in inbox.text
    assert "Faille de sécurité" not in inbox.text  # the reason is for the hoster


def test_retiring_a_tool_from_the_command_line_does_the_same(deployment: Deployment, stub_server: StubServer) -> None:
    """Journey: the operator retires the tool with ``portail instances retire`` while Portail runs."""
    member, id_token, _secret = member_logged_in_to_the_tool(deployment, stub_server)
    deployment.cli("instances", "retire", "passerelles", "--reason", "Remplacé par Passerelles 3")
    claims = logout_claims(member, stub_server)
    assert claims["sub"] == id_token["sub"] and claims["sid"] == id_token["sid"]
    assert "Passerelles est retiré d’En commun" in member.get("/notifications").text
