"""Journeys: what clients, tools and operators can send never gets a 500 or a traceback.

- A tool operator registers a client dynamically (RFC 7591) with an initial access token from
  ``portail clients initial-token``; hostile bodies (1,500 levels of nesting, an unpaired surrogate)
  are RFC 7591 errors, a stranger's ``PUT`` is refused before its body is read, the real
  registration works, and a too-large body on ``/token`` is an OAuth JSON 413.
- An instance declared in ``instances.toml`` logs a member in, then pushes a batch in which one item
  is not Unicode: that item is answered ``invalid`` with its index, the others reach the inbox.
- An operator whose ``instances.toml`` names an ``http://`` redirect URI (without
  ``allow_http_instances``) gets one line naming the instance from ``portail serve`` and from
  ``portail instances sync``, never a traceback.
- A load balancer probes ``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.journeys.conftest import Deployment, sign_up

JSON = {"Content-Type": "application/json"}
SECRET = "secret-de-passerelles-" + "x" * 24
CALLBACK = "http://127.0.0.1:9/auth/callback"  # never called: the code is read from the redirect

INSTANCES = f"""
[[instances]]
slug = "passerelles"
name = "Passerelles"
software = "passerelles"
base_url = "http://127.0.0.1:9"
trusted = true
redirect_uris = ["{CALLBACK}"]
client_secret_env = "PASSERELLES_CLIENT_SECRET"
"""


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _subject_seen_by_the_instance(deployment: Deployment, email: str) -> str:
    """The member logs in to the instance (authorization code flow); the instance reads its ``sub``."""
    member = deployment.visitor()
    member.login(email)
    state = secrets.token_urlsafe(8)
    query = {
        "response_type": "code",
        "client_id": "passerelles",
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": state,
        "nonce": "n",
    }
    back = member.follow(member.get("/authorize", params=query))
    location = back.headers["location"]
    assert location.startswith(CALLBACK), location
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = httpx.post(
        f"{deployment.base_url}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=("passerelles", SECRET),
    )
    assert token.status_code == 200, token.text
    return str(_claims(token.json()["id_token"])["sub"])


def test_hostile_bodies_get_rfc_errors_and_one_bad_push_item_does_not_sink_the_batch(
    deployment: Deployment,
) -> None:
    deployment.env["PASSERELLES_CLIENT_SECRET"] = SECRET
    deployment.write_instances(INSTANCES)
    deployment.start()
    base = deployment.base_url

    # A tool operator registers with an initial access token from the administrator's CLI.
    issued = json.loads(deployment.cli("clients", "initial-token", "--uses", "5", "--json").stdout)
    initial = {"Authorization": f"Bearer {issued['initial_access_token']}", **JSON}
    deep = b"[" * 1500 + b"]" * 1500
    surrogate = b'{"client_name": "\\ud800", "redirect_uris": ["https://outil.example/cb"]}'
    for body in (deep, surrogate, b"[]"):
        refused = httpx.post(f"{base}/register", content=body, headers=initial)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_client_metadata"
    metadata = {"client_name": "Outil", "redirect_uris": ["https://outil.example/cb"]}
    registered = httpx.post(f"{base}/register", json=metadata, headers=initial)
    assert registered.status_code == 201, registered.text
    own_uri = registered.json()["registration_client_uri"]
    stranger = httpx.put(own_uri, content=deep, headers={"Authorization": "Bearer not-the-token", **JSON})
    assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_token"
    owner = {"Authorization": f"Bearer {registered.json()['registration_access_token']}", **JSON}
    assert httpx.put(own_uri, content=deep, headers=owner).status_code == 400

    too_large = httpx.post(
        f"{base}/token",
        content=b"grant_type=" + b"x" * 1_100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_large.status_code == 413 and too_large.json()["error"] == "invalid_request"

    # The instance pushes for a member who logged in to it; one item is not Unicode.
    sign_up(deployment, "marie@example.org", name="Marie Gagnon")
    sub = _subject_seen_by_the_instance(deployment, "marie@example.org")
    granted = httpx.post(
        f"{base}/token",
        data={"grant_type": "client_credentials", "scope": "notifications:push"},
        auth=("passerelles", SECRET),
    )
    assert granted.status_code == 200, granted.text
    batch = {
        "notifications": [
            {"id": "r-1", "sub": sub, "title": "Luc a répondu"},
            {"id": "r-2", "sub": sub, "title": "Réponse \ud800 cassée"},
            {"id": "r-3", "sub": sub, "title": "Nouvelle activité"},
        ]
    }
    pushed = httpx.post(
        f"{base}/api/v1/notifications",
        content=json.dumps(batch).encode(),  # ensure_ascii: the lone surrogate travels as \ud800
        headers={"Authorization": f"Bearer {granted.json()['access_token']}", **JSON},
    )
    assert pushed.status_code == 200, pushed.text
    results = pushed.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "invalid", "accepted"]
    assert results[1]["index"] == 1 and "surrogate" in results[1]["error"]
    inbox = deployment.visitor()
    inbox.login("marie@example.org")
    page = inbox.get("/notifications")
    assert "Luc a répondu" in page.text and "Nouvelle activité" in page.text

    # A load balancer's probes.
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    assert "Traceback" not in deployment.server_log.read_text(encoding="utf-8")


def test_an_http_redirect_uri_in_instances_toml_is_one_line_naming_the_instance(deployment: Deployment) -> None:
    deployment.env["PORTAIL_ALLOW_HTTP_INSTANCES"] = "false"
    deployment.write_instances(
        """
[[instances]]
slug = "wiki"
name = "Wiki du quartier"
software = "other"
base_url = "https://wiki.example.org"
redirect_uris = ["http://wiki.example.org/callback"]
"""
    )
    for command in (("serve", "--port", str(deployment.port)), ("instances", "sync")):
        done = deployment.cli(*command, check=False)
        assert done.returncode != 0, done.stdout
        assert "Traceback" not in done.stderr + done.stdout
        errors = done.stderr.strip().splitlines()
        assert len(errors) == 1 and "[wiki]" in errors[0] and "http://wiki.example.org/callback" in errors[0]

    deployment.write_instances('[[instances]]\nslug = "wiki"\nname = "Wiki"\nredirect_uris = "https://x"\n')
    done = deployment.cli("instances", "sync", check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "redirect_uris" in done.stderr and len(done.stderr.strip().splitlines()) == 1
