"""Journey: a hoster brings a real Matrix Synapse into the federation, and its mentions reach Portail.

A member signs up and applies as a hoster through the pages; the printed administrator accepts the
hoster. The hoster registers a Matrix node (its own ``idp_id``, ``quartier``, in the form) whose base
URL is a real Synapse on loopback behind a tiny front proxy — as a hoster's nginx would be — that
serves the domain challenge and forwards everything else to Synapse. The hoster proves the domain,
the administrator approves the node, the hoster copies the Synapse configuration (``sso`` and
``oidc_providers``) **from the configuration page's HTML** into ``homeserver.yaml`` and restarts
Synapse. Then a member logs in to that Synapse through Portail (SSO), links Matrix notifications
from Portail's preferences ("Lier mon compte Matrix"), and a mention sent in a room shows in their
inbox. The prober reads Synapse's own version (``/_matrix/federation/v1/version``), not the Matrix
spec version.

On today's main this journey broke at the seams: the snippet said ``idp_id: encommun`` while the
link went to ``oidc-portail``, the snippet had no ``sso.client_whitelist`` (Synapse then shows a
confirmation page instead of handing the login token back to Portail), a hoster could not set the
idp id, and the probe stored ``Matrix v1.11`` as the software version.

Synapse starts once for the module (about 10 s) and is restarted once with the pasted configuration.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import yaml

from tests.conftest import PASSWORD
from tests.interop.forms import submit, walk
from tests.interop.synapse_harness import SynapseServer, ensure_synapse_venv, free_port
from tests.journeys.conftest import Deployment, sign_up

pytestmark = pytest.mark.interop

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHALLENGE_PATH = "/.well-known/portail-challenge"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
INSTANCES = """
[[organizations]]
slug = "quartier-centre"
name = "Table de quartier du Centre"
"""


class FrontProxy:
    """A hoster's front web server on loopback: serves the domain challenge, forwards the rest."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.challenge = ""
        self.http = httpx.Client(base_url=upstream, timeout=30.0, follow_redirects=False)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                if self.path.split("?", 1)[0] == CHALLENGE_PATH:
                    self._send(200 if proxy.challenge else 404, [("Content-Type", "text/plain")], proxy.challenge)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]  # Host kept
                headers += [("X-Forwarded-For", self.client_address[0]), ("X-Forwarded-Proto", "http")]
                try:
                    answer = proxy.http.request(self.command, self.path, headers=headers, content=body)
                except httpx.HTTPError:
                    self._send(502, [("Content-Type", "text/plain")], "bad gateway")
                    return
                kept = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in HOP_BY_HOP]
                self._send(answer.status_code, kept, answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes | str) -> None:
                raw = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.http.close()


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SynapseServer, FrontProxy]]:
    """One Synapse for the module, reached (and advertised) through its front proxy."""
    python = ensure_synapse_venv(PROJECT_ROOT)
    port = free_port()
    proxy = FrontProxy(f"http://127.0.0.1:{port}")
    server = SynapseServer(
        python, tmp_path_factory.mktemp("synapse-hoster"), port, extra_config={"public_baseurl": f"{proxy.url}/"}
    )
    try:
        server.start()
        yield server, proxy
    finally:
        server.stop()
        proxy.close()


def _eventually(check: Any, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def _snippet(html: str, marker: str) -> str:
    """The text of the configuration block (``<pre class="snippet">``) that contains ``marker``."""
    for block in re.findall(r'<pre class="snippet"[^>]*>(.*?)</pre>', html, re.S):
        text = unescape(block)
        if marker in text:
            return text
    raise AssertionError(f"no snippet with {marker!r} on the configuration page")


def test_a_hoster_brings_synapse_in_and_a_members_mention_reaches_the_inbox(
    deployment: Deployment, synapse: tuple[SynapseServer, FrontProxy]
) -> None:
    hs, proxy = synapse
    deployment.write_instances(INSTANCES)
    deployment.start()
    admin = deployment.admin()

    # A member applies as a hoster; the federation accepts them.
    hoster = sign_up(deployment, "technique@coop-quartier.example", name="Coop du quartier")
    hoster.login("technique@coop-quartier.example")
    applied = hoster.submit(
        "/federation/hosters/apply",
        data={
            "name": "Coop du quartier",
            "website": "https://coop-quartier.example",
            "contact_email": "technique@coop-quartier.example",
            "description": "Hébergement libre pour les organismes du quartier.",
            "region": "06",
            "accept_charter": "on",
        },
    )
    assert applied.status_code == 303, applied.text[:1000]
    hoster_page = applied.headers["location"]
    slug = hoster_page.rsplit("/", 1)[1]
    accepted = admin.submit("/federation/admin", f"/federation/admin/hosters/{slug}", data={"decision": "approve"})
    assert accepted.status_code == 303, accepted.text[:1000]

    # Now a hoster administrator, they must enrol a second factor before the hoster pages open.
    assert hoster.get(f"/federation/hosters/{slug}/nodes/new").status_code == 303
    hoster.enrol_authenticator_app()

    # The hoster registers its Synapse, served behind its front proxy, naming Portail "quartier" there.
    registered = hoster.submit(
        f"/federation/hosters/{slug}/nodes/new",
        data={
            "software": "matrix",
            "name": "Clavardage du quartier",
            "base_url": proxy.url,
            "scope": "organization",
            "organization": "quartier-centre",
            "provider_identifier": "quartier",
        },
    )
    assert registered.status_code == 303, registered.text[:1000]
    node = registered.headers["location"]
    token = re.search(r'<pre id="challenge-token">([^<]+)</pre>', hoster.get(node).text)
    assert token, "no challenge on the node's page"
    proxy.challenge = unescape(token.group(1)).strip()
    verified = hoster.submit(node, f"{node}/verify")
    assert verified.status_code == 303, verified.text[:1000]
    approved = admin.submit(node, f"{node}/decision", data={"action": "approve"})
    assert approved.status_code == 303, approved.text[:1000]

    # The hoster copies the configuration from the page into homeserver.yaml and restarts Synapse.
    configuration = hoster.submit(node, f"{node}/secret")
    assert configuration.status_code == 200, configuration.text[:1000]
    pasted = yaml.safe_load(_snippet(configuration.text, "oidc_providers:"))
    assert pasted["oidc_providers"][0]["idp_id"] == "quartier"
    hs.stop()
    hs.extra_config.update(pasted)
    hs.start()
    assert not [line for line in hs.iter_log_lines() if "Login may be broken" in line], hs.diagnostics()

    # The prober stores Synapse's own version, not the Matrix spec version.
    server_version = hs.api_json("GET", "/_matrix/federation/v1/version")["server"]["version"]
    deployment.cli("instances", "probe", node.rsplit("/", 1)[1])
    health = admin.get(node).text
    assert f"Synapse {server_version}" in health and "Matrix v1." not in health

    # A member logs in to that Synapse through Portail (the homeserver's own login fallback page).
    member = sign_up(deployment, "alice@example.org", name="Alice Tremblay")
    member.login("alice@example.org", PASSWORD)
    fallback = f"{proxy.url}/_matrix/static/client/login/"
    sso = f"{proxy.url}/_matrix/client/v3/login/sso/redirect/oidc-quartier?redirectUrl={quote(fallback, safe='')}"
    url, page = walk(member.http, sso, fallback)
    assert page is not None and "/consent" in urlsplit(url).path, (url, page and page.text[:800], hs.diagnostics())
    answer = submit(member.http, url, page.text, button=("decision", "allow"))
    assert answer.status_code in (302, 303), answer.text[:500]
    url, page = walk(member.http, str(httpx.URL(url).join(answer.headers["location"])), fallback)
    assert page is None, (url, page and page.text[:1000], hs.diagnostics())
    login_token = dict(httpx.URL(url).params)["loginToken"]
    account = hs.login_token(login_token).user_id
    assert account.startswith("@alice") and account.endswith(":localhost")

    # ... and links Matrix notifications from Portail ("Lier mon compte Matrix").
    preferences = member.get("/notifications/preferences")
    assert "Lier mon compte Matrix" in preferences.text
    start = member.submit(
        "/notifications/preferences", re.search(r'action="(/notifications/link/matrix/\d+)"', preferences.text)[1]
    )  # type: ignore[index]
    assert start.status_code == 303
    assert urlsplit(start.headers["location"]).path == "/_matrix/client/v3/login/sso/redirect/oidc-quartier"
    callback = f"{deployment.base_url}/notifications/link/matrix/callback"
    url, page = walk(member.http, start.headers["location"], callback)
    assert page is None, (url, page and page.text[:1000], hs.diagnostics())  # no confirmation page
    linked = member.get(url)
    assert linked.status_code == 303 and linked.headers["location"] == "/notifications", linked.text[:800]

    # Someone mentions the member in a room; the mention shows in their inbox.
    bob = hs.register_user("bob", PASSWORD, admin=True, displayname="Bob")
    room_id = hs.api_json("POST", "/_matrix/client/v3/createRoom", bob.access_token, json={"name": "Comité"})["room_id"]
    hs.api_json(
        "POST", f"/_synapse/admin/v1/join/{quote(room_id, safe='')}", bob.access_token, json={"user_id": account}
    )
    hs.api_json(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/txn1",
        bob.access_token,
        json={
            "msgtype": "m.text",
            "body": "Alice : peux-tu relire le procès-verbal ?",
            "m.mentions": {"user_ids": [account]},
        },
    )
    inbox = _eventually(lambda: (text := member.get("/notifications").text) and "procès-verbal" in text and text)
    assert inbox, "the mention never reached the inbox"
    assert "Clavardage du quartier" in inbox
