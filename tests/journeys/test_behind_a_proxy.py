"""Journey: an operator runs ``portail serve --workers 2`` behind a TLS reverse proxy, scrapes
``/metrics`` with a token, and reads the request log.

The proxy is played by the test: it connects from 127.0.0.1 (the default ``forwarded_allow_ips``)
and sends what nginx sends (``X-Forwarded-Proto: https``, ``X-Forwarded-For``, ``X-Forwarded-Host``,
``X-Request-Id``). Secure cookies are carried by hand, as a browser would over HTTPS.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSWORD
from tests.journeys.conftest import CSRF_RE, Deployment

ISSUER = "https://portail.example.org"
MEMBER = "lea.gagnon@example.org"
TOKEN = secrets.token_urlsafe(24)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path)
    deployed.env.update({"PORTAIL_ISSUER": ISSUER, "PORTAIL_METRICS_TOKEN": TOKEN})
    deployed.write_instances("")
    stale = deployed.var / "metrics" / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a previous run")
    try:
        yield deployed
    finally:
        deployed.close()


class ProxiedBrowser:
    """A browser on https://portail.example.org, relayed by the reverse proxy to one node."""

    def __init__(self, node: Deployment, address: str) -> None:
        self.http = httpx.Client(base_url=node.base_url, follow_redirects=False, timeout=30)
        self.address = address
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = {
            **(headers or {}),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": self.address,
            "X-Forwarded-Host": "portail.example.org",
            "Host": "127.0.0.1",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        for raw in response.headers.get_list("set-cookie"):
            self.set_cookies.append(raw)
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in raw:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response


def samples(node: Deployment) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = httpx.get(f"{node.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_behind_a_tls_proxy_urls_cookies_and_client_addresses_are_right(proxied: Deployment) -> None:
    """Journey: behind the proxy, the issuer, redirects and cookies are https; the log names the
    member's address and the proxy's request id; metrics add up across two workers."""
    proxied.start("--workers", "2", "--forwarded-allow-ips", "127.0.0.1")
    assert not (proxied.var / "metrics" / "counter_999999.db").exists(), "serve empties the metrics folder"
    proxied.cli("users", "create", MEMBER, "--name", "Léa Gagnon", "--password-stdin", input=PASSWORD)

    browser = ProxiedBrowser(proxied, "198.51.100.7")
    discovery = browser.request("GET", "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == ISSUER
    assert discovery["token_endpoint"] == f"{ISSUER}/token"

    login_page = browser.request("GET", "/login", headers={"X-Request-Id": "proxy-req-42"})
    assert login_page.headers["x-request-id"] == "proxy-req-42"
    assert login_page.headers["strict-transport-security"].startswith("max-age=")
    csrf = unescape(CSRF_RE.findall(login_page.text)[0])
    logged_in = browser.request("POST", "/login", data={"email": MEMBER, "password": PASSWORD, "csrf_token": csrf})
    assert logged_in.status_code == 303, logged_in.text[:500]
    location = logged_in.headers["location"]
    assert location.startswith("/") or location.startswith(ISSUER)
    assert browser.set_cookies and all("; Secure" in raw or "secure" in raw.lower() for raw in browser.set_cookies)
    assert "portail_session" in browser.cookies
    assert browser.request("GET", "/account").status_code == 200
    away = ProxiedBrowser(proxied, "198.51.100.8").request("GET", "/account")
    assert away.status_code in (302, 303)
    assert away.headers["location"].startswith("/login") or away.headers["location"].startswith(f"{ISSUER}/login")

    robot = json.loads(
        proxied.cli("clients", "create", "--name", "Robot", "--grant-type", "client_credentials", "--json").stdout
    )
    granted = httpx.post(
        f"{proxied.base_url}/token",
        data={"grant_type": "client_credentials"},
        auth=(robot["client_id"], robot["client_secret"]),
        headers={"X-Forwarded-Proto": "https"},
    )
    assert granted.status_code == 200, granted.text

    discovery_key = (
        "portail_http_requests_total",
        frozenset({("method", "GET"), ("route", "/.well-known/openid-configuration"), ("status", "200")}),
    )
    before = samples(proxied)[discovery_key]
    for _ in range(10):
        assert httpx.get(f"{proxied.base_url}/.well-known/openid-configuration").status_code == 200
    workers = {re.sub(r"\D", "", p.name) for p in (proxied.var / "metrics").glob("*.db")}
    assert len(workers) >= 2, f"two workers write their samples: {workers}"
    for _ in range(3):  # whichever worker answers, it adds up every worker's samples
        found = samples(proxied)
        assert found[discovery_key] == before + 10
        assert found[("portail_logins_total", frozenset({("method", "password"), ("result", "success")}))] == 1
        assert (
            found[("portail_token_requests_total", frozenset({("grant_type", "client_credentials"), ("result", "ok")}))]
            == 1
        )
        assert found[("portail_active_sessions", frozenset())] == 1
    assert httpx.get(f"{proxied.base_url}/metrics").status_code == 401

    log = proxied.server_log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"event":"request"')]
    login_lines = [line for line in lines if line["route"] == "/login" and line["method"] == "POST"]
    assert login_lines and login_lines[0]["client"] == "198.51.100.7"
    assert any(line["request_id"] == "proxy-req-42" for line in lines)
    for secret in (PASSWORD, robot["client_secret"], granted.json()["access_token"], *browser.cookies.values()):
        assert secret not in log
