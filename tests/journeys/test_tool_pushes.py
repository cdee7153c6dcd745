"""Journey: a tool pushes a notification to a member, as docs/notifications-api.md tells it to.

The operator declares a Passerelles instance in instances.toml (its client secret from the
environment, ``client_secret_env``) and starts Portail. A newcomer signs up and uses the tool: they
log in to it through the authorization code flow, so the tool knows their ``sub``. The tool then
follows the push API's documentation with the client Portail provisioned for it: a
``client_credentials`` token of scope ``notifications:push``, then ``POST /api/v1/notifications``.
The member reads the notification in their inbox and receives it live on the Server-Sent Events
stream (``/notifications/stream``). On today's main the token request answered
``unauthorized_client``: provisioned clients had no ``client_credentials`` grant.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from tests.conftest import free_port
from tests.journeys.conftest import Deployment, sign_up
from tests.oidc_flow import Flow, basic, decode

SECRET_ENV = "ENCOMMUN_SECRET_PASSERELLES"


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
trusted = true
redirect_uris = ["{tool}/auth/callback"]
client_secret_env = "{SECRET_ENV}"
"""


def next_event(lines: Any) -> dict[str, Any]:
    """The data of the next ``event: notification`` on an SSE stream."""
    event = ""
    for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "notification":
            return dict(json.loads(line.split(":", 1)[1]))
    raise AssertionError("the stream ended without a notification")


def test_a_tool_declared_in_instances_toml_pushes_a_notification_the_member_reads_and_receives_live(
    deployment: Deployment,
) -> None:
    tool = f"http://127.0.0.1:{free_port()}"  # the tool's own pages are never fetched
    secret = secrets.token_urlsafe(32)
    deployment.env[SECRET_ENV] = secret
    deployment.write_instances(instances(tool))
    deployment.start()

    member = sign_up(deployment, "lea@example.org", name="Léa Bouchard")
    member.login("lea@example.org")
    flow = Flow(member.http, "passerelles", secret, redirect_uri=f"{tool}/auth/callback")  # type: ignore[arg-type]
    tokens = flow.tokens()
    sub = decode(member.http, tokens["id_token"])["sub"]  # type: ignore[arg-type]

    # docs/notifications-api.md §1: the tool's own client, client_credentials, scope notifications:push.
    api = httpx.Client(base_url=deployment.base_url, timeout=30.0)
    answer = api.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "notifications:push"},
        headers=basic("passerelles", secret),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "notifications:push"
    access_token = answer.json()["access_token"]

    with member.http.stream("GET", "/notifications/stream", timeout=30.0) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")  # subscribed: what is pushed now reaches this stream
        pushed = api.post(
            "/api/v1/notifications",
            headers={"Authorization": f"Bearer {access_token}"},
            json={
                "notifications": [
                    {
                        "id": "c-1842-r-7",
                        "sub": sub,
                        "type": "reply",
                        "title": "Marie a répondu à votre message",
                        "body": "« Je serai là jeudi »",
                        "link": f"{tool}/c/1842#r7",
                    }
                ]
            },
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["results"] == [{"id": "c-1842-r-7", "status": "accepted"}]
        live = next_event(lines)
    assert live["title"] == "Marie a répondu à votre message"
    assert live["tool"] == "Passerelles" and live["type"] == "reply" and live["unread"] == 1

    inbox = member.get("/notifications")
    assert inbox.status_code == 200
    assert "Marie a répondu à votre message" in inbox.text and "Je serai là jeudi" in inbox.text
    api.close()
