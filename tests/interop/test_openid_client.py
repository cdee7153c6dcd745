"""Portail against an independent, certified relying-party library: panva's ``openid-client``
(npm), driven by ``tests/interop/openid_client/rp.mjs``.

The library does discovery, builds the authorization URL with PKCE S256, validates the
authorization response (``state``, RFC 9207 ``iss``) and the ID token (signature from the JWKS,
``iss``, ``aud``, ``exp``, ``nonce``), calls userinfo (``sub`` must match), refreshes (rotation) and
builds the RP-Initiated Logout URL; this test plays the browser in between and follows the logout
to the registered ``post_logout_redirect_uri`` with ``state`` echoed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from sqlmodel import select

from portail.accounts.mfa import totp
from portail.accounts.models import LoginSession, Member
from portail.oidc import claims as claims_module
from portail.oidc.clients import ClientSpec, create_client
from tests.conftest import PASSWORD, create_member
from tests.interop.conftest import LiveServer
from tests.interop.forms import browser, submit, walk

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent / "openid_client"
REDIRECT_URI = "http://127.0.0.1:9/rp/callback"
POST_LOGOUT_URI = "http://127.0.0.1:9/rp/logged-out"


def _node() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    assert node and npm, "node and npm are needed (apt-get install nodejs npm)"
    if not (HERE / "node_modules" / "openid-client").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    return node


def _rp(node: str, command: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [node, "rp.mjs"], cwd=HERE, input=json.dumps(command), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_openid_client_logs_in_validates_refreshes_and_logs_out(live_portail: LiveServer) -> None:
    node = _node()
    member = create_member(live_portail.settings, "lea@example.org", "Léa Roy")
    with live_portail.db.session() as s:
        _client, secret = create_client(
            s,
            ClientSpec(
                name="Outil de test",
                client_id="openid-client",
                redirect_uris=[REDIRECT_URI],
                post_logout_redirect_uris=[POST_LOGOUT_URI],
            ),
        )
    base = {
        "issuer": live_portail.issuer,
        "client_id": "openid-client",
        "client_secret": secret,
        "redirect_uri": REDIRECT_URI,
    }
    started = _rp(node, {**base, "step": "start"})
    with browser() as agent:
        url, page = walk(agent, started["authorization_url"], REDIRECT_URI)
        assert page is not None and urlsplit(url).path == "/login"
        answer = submit(agent, url, page.text, email=member.email, password=PASSWORD)
        url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), REDIRECT_URI)
        if page is not None:
            answer = submit(agent, url, page.text, button=("decision", "allow"))
            url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), REDIRECT_URI)
        assert page is None, url
        finished = _rp(
            node,
            {
                **base,
                **{k: started[k] for k in ("state", "nonce", "verifier")},
                "step": "finish",
                "callback_url": url,
                "post_logout_redirect_uri": POST_LOGOUT_URI,
            },
        )
        claims = finished["claims"]
        assert claims["iss"] == live_portail.issuer and claims["aud"] in ("openid-client", ["openid-client"])
        assert claims["nonce"] == started["nonce"] and claims["sid"]
        assert finished["userinfo"]["sub"] == claims["sub"]
        assert finished["userinfo"]["email"] == "lea@example.org"
        assert finished["refresh_rotated"] is True
        assert finished["refreshed_claims"]["sub"] == claims["sub"]

        logout_url = finished["logout_url"]
        assert urlsplit(logout_url).path == "/end-session"
        response = agent.get(logout_url)
        assert response.status_code in (302, 303)
        target = urlsplit(response.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == POST_LOGOUT_URI
        assert parse_qs(target.query)["state"] == [finished["logout_state"]]
    with live_portail.db.session() as s:
        session = s.exec(select(LoginSession).where(LoginSession.sid == claims["sid"])).one()
        assert session.ended_at is not None and session.end_reason == "rp-logout"


def test_openid_client_asking_acr_values_mfa_gets_a_second_step_and_amr_acr(live_portail: LiveServer) -> None:
    """RFC 8176 ``amr`` and OIDC Core §2 ``acr`` in an ID token validated by the independent library."""
    node = _node()
    member = create_member(live_portail.settings, "lea@example.org", "Léa Roy")
    with live_portail.db.session() as s:
        _client, secret = create_client(
            s, ClientSpec(name="Outil exigeant", client_id="mfa-tool", redirect_uris=[REDIRECT_URI])
        )
        stored = s.get(Member, member.id)
        assert stored is not None
        shown = totp.start(s, live_portail.settings.secret_key, stored)  # what the security page shows
        totp.confirm(s, live_portail.settings.secret_key, stored, pyotp.TOTP(shown).now())
    base = {
        "issuer": live_portail.issuer,
        "client_id": "mfa-tool",
        "client_secret": secret,
        "redirect_uri": REDIRECT_URI,
    }
    started = _rp(node, {**base, "step": "start", "acr_values": claims_module.ACR_MFA})
    with browser() as agent:
        url, page = walk(agent, started["authorization_url"], REDIRECT_URI)
        assert page is not None and urlsplit(url).path == "/login"
        answer = submit(agent, url, page.text, email=member.email, password=PASSWORD)
        url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), REDIRECT_URI)
        assert page is not None and urlsplit(url).path == "/login/second-step"
        fresh_code = pyotp.TOTP(shown).at(time.time() + 30)
        answer = submit(agent, url, page.text, code=fresh_code)
        url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), REDIRECT_URI)
        if page is not None:
            answer = submit(agent, url, page.text, button=("decision", "allow"))
            url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), REDIRECT_URI)
        assert page is None, url
        finished = _rp(
            node,
            {
                **base,
                **{k: started[k] for k in ("state", "nonce", "verifier")},
                "step": "finish",
                "callback_url": url,
                "post_logout_redirect_uri": POST_LOGOUT_URI,
            },
        )
    token = finished["claims"]
    assert token["acr"] == claims_module.ACR_MFA
    assert {"pwd", "otp", "mfa"} <= set(token["amr"])
