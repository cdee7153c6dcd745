"""Journeys of a member through the central tools, on a Portail deployed as an operator deploys it.

The operator declares three central tools in ``instances.toml`` — Passerelles and Praxis with
explicit ``redirect_uris`` on loopback, a Nextcloud whose URIs Portail derives — with their secrets
in the environment (``client_secret_env``), back-channel logout and account-events endpoints on
loopback receivers, and starts ``portail serve``. Each tool is played exactly as the tool's OpenID
Connect client would act, with authlib's client (what a Python tool uses): discovery, ``/authorize``
with PKCE (S256), state and nonce, the member's browser through the login form (and consent when the
tool is not trusted), the callback, ``/token`` with the tool's client secret, the ID token verified
against the JWKS as authlib's ``parse_id_token`` does (signature, ``iss``, ``aud``, ``exp``,
``nonce``, ``at_hash``), then ``/userinfo``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import PASSWORD, free_port
from tests.journeys.conftest import CSRF_RE, Deployment, Visitor, sign_up

EMAIL = "alice.tremblay@example.org"


# ---------------------------------------------------------------- what a tool runs on its side


@dataclass
class Receiver:
    """A tool's server on loopback: records every POST (back-channel logout, account events)."""

    base_url: str
    server: ThreadingHTTPServer
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, content type, body
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, path: str, count: int = 1, timeout: float = 20.0) -> list[bytes]:
        def bodies() -> list[bytes]:
            return [body for p, _t, body in self.posts if p == path]

        with self.arrived:
            self.arrived.wait_for(lambda: len(bodies()) >= count, timeout)
        found = bodies()
        assert len(found) >= count, f"{count} POST(s) to {self.base_url}{path} expected, got {self.posts}"
        return found


def _receiver() -> Receiver:
    port = free_port()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.arrived:
                state.posts.append((self.path, self.headers.get("Content-Type", ""), body))
                state.arrived.notify_all()
            self.send_response(202 if "secevent" in self.headers.get("Content-Type", "") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state = Receiver(f"http://127.0.0.1:{port}", server)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return state


@dataclass(frozen=True)
class Tool:
    """One central tool as its OIDC client sees itself: id, secret, callback, and its server."""

    slug: str
    secret: str
    redirect_uri: str
    backchannel_path: str
    events_path: str
    receiver: Receiver


@dataclass
class SignedIn:
    claims: dict[str, Any]
    userinfo: dict[str, Any]
    pages: list[str]  # the Portail pages the member's browser went through
    tokens: dict[str, Any] = field(default_factory=dict)  # the token endpoint's answer, as the tool keeps it


def _form_action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"[^>]*>(?:(?!</form>).)*name="decision"', html, re.S)
    assert match, "no consent form on the page"
    return unescape(match.group(1))


def _keys(deployment: Deployment) -> KeySet:
    discovery = httpx.get(f"{deployment.base_url}/.well-known/openid-configuration").json()
    return KeySet.import_key_set(httpx.get(discovery["jwks_uri"]).json())


def log_in_to(tool: Tool, deployment: Deployment, browser: Visitor) -> SignedIn:
    """The authorization-code flow with PKCE, as the tool's OIDC client library runs it."""
    discovery = httpx.get(f"{deployment.base_url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == deployment.base_url
    assert "S256" in discovery["code_challenge_methods_supported"]
    client = OAuth2Client(
        tool.slug,
        tool.secret,  # client_secret_basic: authlib's default, and Portail's for a confidential client
        scope="openid profile email",
        redirect_uri=tool.redirect_uri,
        code_challenge_method="S256",
    )
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    response = browser.get(url)
    pages: list[str] = []
    for _ in range(10):
        location = response.headers.get("location", "")
        if response.status_code in (302, 303) and location.startswith(tool.redirect_uri):
            break
        if response.status_code in (302, 303) and urlsplit(location).path == "/login":
            pages.append("login")
            next_url = parse_qs(urlsplit(location).query)["next"][0]
            response = browser.submit(location, data={"email": EMAIL, "password": PASSWORD, "next": next_url})
        elif response.status_code in (302, 303):
            response = browser.get(location)
        elif response.status_code == 200 and 'name="decision"' in response.text:
            pages.append("consent")
            token = unescape(CSRF_RE.findall(response.text)[0])
            response = browser.http.post(_form_action(response.text), data={"csrf_token": token, "decision": "allow"})
        else:
            raise AssertionError(f"unexpected answer {response.status_code}: {response.text[:800]}")
    callback = response.headers["location"]
    assert parse_qs(urlsplit(callback).query)["state"] == [state]

    token = client.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    # What authlib's parse_id_token does: JWKS, then the OpenID Connect Core §3.1.3.7 checks.
    decoded = jwt.decode(token["id_token"], _keys(deployment))
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"essential": True, "values": [discovery["issuer"]]}},
        {"nonce": nonce, "client_id": tool.slug, "access_token": token["access_token"]},
    )
    claims.validate(leeway=0)
    userinfo = client.get(discovery["userinfo_endpoint"])
    assert userinfo.status_code == 200, userinfo.text
    client.close()
    return SignedIn(dict(claims), userinfo.json(), pages, dict(token))


# ---------------------------------------------------------------- the operator's deployment


@dataclass
class CentralTools:
    passerelles: Tool
    praxis: Tool
    nuage: Tool

    def __iter__(self) -> Iterator[Tool]:
        return iter((self.praxis, self.passerelles, self.nuage))


def _instances(passerelles: Receiver, praxis: Receiver, nuage: Receiver) -> str:
    return f"""
[[hosters]]
slug = "projet-collectif"
name = "Projet collectif"
website = "https://projetcollectif.ca"
contact_email = "technique@projetcollectif.example"
charter_version = "2026-11"

[[instances]]
slug = "passerelles"
name = "Passerelles"
software = "passerelles"
base_url = "{passerelles.base_url}"
hoster = "projet-collectif"
scope = "central"
trusted = true
redirect_uris = ["{passerelles.base_url}/auth/callback"]
backchannel_logout_uri = "{passerelles.base_url}/auth/backchannel-logout"
account_events_uri = "{passerelles.base_url}/auth/events"
client_secret_env = "ENCOMMUN_SECRET_PASSERELLES"

[[instances]]
slug = "praxis"
name = "Praxis"
software = "praxis"
base_url = "{praxis.base_url}"
hoster = "projet-collectif"
scope = "central"
trusted = false
redirect_uris = ["{praxis.base_url}/auth/callback"]
backchannel_logout_uri = "{praxis.base_url}/auth/backchannel-logout"
account_events_uri = "{praxis.base_url}/auth/events"
client_secret_env = "ENCOMMUN_SECRET_PRAXIS"

[[instances]]
slug = "nuage"
name = "Nuage En commun"
software = "nextcloud"
base_url = "{nuage.base_url}"
hoster = "projet-collectif"
scope = "central"
trusted = true
provider_identifier = "encommun"
account_events_uri = "{nuage.base_url}/index.php/apps/encommun/events"
client_secret_env = "ENCOMMUN_SECRET_NUAGE"
"""


@pytest.fixture
def tools(deployment: Deployment) -> Iterator[CentralTools]:
    receivers = [_receiver() for _ in range(3)]
    passerelles, praxis, nuage = receivers
    deployment.write_instances(_instances(passerelles, praxis, nuage))
    secrets_by_slug = {slug: secrets.token_urlsafe(32) for slug in ("passerelles", "praxis", "nuage")}
    for slug, secret in secrets_by_slug.items():
        deployment.env[f"ENCOMMUN_SECRET_{slug.upper()}"] = secret
    yield CentralTools(
        passerelles=Tool(
            "passerelles",
            secrets_by_slug["passerelles"],
            f"{passerelles.base_url}/auth/callback",
            "/auth/backchannel-logout",
            "/auth/events",
            passerelles,
        ),
        praxis=Tool(
            "praxis",
            secrets_by_slug["praxis"],
            f"{praxis.base_url}/auth/callback",
            "/auth/backchannel-logout",
            "/auth/events",
            praxis,
        ),
        # Derived by Portail for Nextcloud user_oidc: the callback and the back-channel endpoint.
        nuage=Tool(
            "nuage",
            secrets_by_slug["nuage"],
            f"{nuage.base_url}/apps/user_oidc/code",
            "/index.php/apps/user_oidc/backchannel-logout/encommun",
            "/index.php/apps/encommun/events",
            nuage,
        ),
    )
    for receiver in receivers:
        receiver.server.shutdown()
        receiver.server.server_close()


def _verified(deployment: Deployment, token: str, audience: str) -> dict[str, Any]:
    """A token Portail pushed to a tool, checked as the tool would: signature by the JWKS, issuer, audience."""
    claims = dict(jwt.decode(token, _keys(deployment)).claims)
    assert claims["iss"] == deployment.base_url and claims["aud"] in (audience, [audience])
    return claims


def _signed_in_everywhere(deployment: Deployment, tools: CentralTools) -> tuple[Visitor, dict[str, SignedIn]]:
    deployment.start()
    browser = sign_up(deployment, EMAIL, name="Alice Tremblay")
    done = {tool.slug: log_in_to(tool, deployment, browser) for tool in tools}
    return browser, done


# ---------------------------------------------------------------- journeys


def test_a_member_logs_in_once_to_every_central_tool_and_logs_out_of_all(
    deployment: Deployment, tools: CentralTools
) -> None:
    """Journey: sign up, verify, log in to Praxis (login form, then consent: it is not trusted), then
    to Passerelles and Nextcloud without any page (single sign-on, trusted); log out from Portail:
    every tool receives a back-channel logout token for that session, and the next tool login asks for
    the password again."""
    browser, done = _signed_in_everywhere(deployment, tools)
    assert done["praxis"].pages == ["login", "consent"]
    assert done["passerelles"].pages == [] and done["nuage"].pages == []
    subs = {slug: signed.claims["sub"] for slug, signed in done.items()}
    assert len(set(subs.values())) == 1  # subject_type public: one sub for the three tools
    sids = {signed.claims["sid"] for signed in done.values()}
    assert len(sids) == 1  # one login session
    for slug, signed in done.items():
        assert signed.userinfo["sub"] == subs[slug]
        assert signed.userinfo["email"] == EMAIL and signed.userinfo["name"] == "Alice Tremblay"

    logout = browser.submit("/logout")
    assert logout.status_code == 303 and logout.headers["location"] == "/login"
    assert "Alice Tremblay" not in browser.follow(browser.get("/")).text  # the welcome page, not hers
    for tool in tools:
        (body,) = tool.receiver.wait_for(tool.backchannel_path)
        token = parse_qs(body.decode())["logout_token"][0]
        claims = _verified(deployment, token, tool.slug)
        assert claims["sub"] == subs[tool.slug] and claims["sid"] in sids
        assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
    # The single sign-on is over: the next tool asks the member to log in again.
    assert log_in_to(tools.passerelles, deployment, browser).pages == ["login"]


def test_a_deletion_reaches_every_tool_that_knew_the_member(deployment: Deployment, tools: CentralTools) -> None:
    """Journey: a member who uses the three tools deletes their account from "Mes données"; the
    operator's grace period is over (``PORTAIL_DELETION_GRACE_DAYS``) and the personal-data jobs run
    (``portail privacy run-jobs``, from cron here: the in-process loop is turned off); each tool
    receives the account-purged Security Event Token at the URI its instance declares, and Portail
    keeps nothing personal."""
    deployment.env["PORTAIL_DELETION_GRACE_DAYS"] = "0"
    deployment.env["PORTAIL_PRIVACY_JOBS_INTERVAL_SECONDS"] = "0"
    browser, done = _signed_in_everywhere(deployment, tools)

    data = browser.get("/account/data")
    assert data.status_code == 200 and "Supprimer mon compte" in data.text
    asked = browser.submit("/account/data", "/account/data/delete", data={"password": PASSWORD})
    assert asked.status_code == 200 and "Suppression demandée" in asked.text, asked.text[:800]
    assert "Vous êtes maintenant déconnecté" in asked.text and "Se déconnecter" not in asked.text
    for tool in tools:  # asking ends every session: the tools are logged out at once
        tool.receiver.wait_for(tool.backchannel_path)

    ran = deployment.cli("privacy", "run-jobs")
    report = json.loads(ran.stdout)
    assert len(report["purged"]) == 1, ran.stdout
    for tool in tools:
        (body,) = tool.receiver.wait_for(tool.events_path)
        content_types = {t for p, t, _b in tool.receiver.posts if p == tool.events_path}
        assert content_types == {"application/secevent+jwt"}
        header = json.loads(base64.urlsafe_b64decode(body.split(b".")[0] + b"=="))
        assert header["typ"] == "secevent+jwt"
        claims = _verified(deployment, body.decode(), tool.slug)
        event = claims["events"]["https://schemas.openid.net/secevent/risc/event-type/account-purged"]
        assert event["subject"] == {
            "format": "iss_sub",
            "iss": deployment.base_url,
            "sub": done[tool.slug].claims["sub"],
        }

    # Nothing personal left: the address is unknown to the CLI; once the server has stopped (the
    # write-ahead log checkpointed), no byte of the database files holds the address or the name;
    # after a restart, the login refuses the address.
    assert deployment.cli("users", "export", EMAIL, check=False).returncode != 0
    deployment.stop()
    stored = b"".join(p.read_bytes() for p in deployment.var.glob("*.db*"))
    assert stored and EMAIL.encode() not in stored and b"Alice Tremblay" not in stored
    deployment.start()
    refused = deployment.visitor().submit("/login", data={"email": EMAIL, "password": PASSWORD, "next": "/"})
    assert refused.status_code == 401 and "Adresse courriel ou mot de passe incorrect." in refused.text
