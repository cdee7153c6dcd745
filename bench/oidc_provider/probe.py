"""Smoke probe for the reference oidc-provider (bench/oidc_provider/server.mjs).

Starts ``node server.mjs`` on a free loopback port, waits for discovery,
performs each of the seven benchmark scenarios once, prints ``OK <scenario>``
per scenario and stops the server. Exit status 0 only if all passed.

    .venv/bin/python bench/oidc_provider/probe.py            # own server
    .venv/bin/python bench/oidc_provider/probe.py --port 3100 # fixed port

Only stdlib + httpx. The scenario coroutines are shared with ``quick_load.py``;
request sequences are documented in ``driver_notes.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import http.cookiejar
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import httpx

HERE = Path(__file__).resolve().parent
SCENARIOS = ("discovery", "jwks", "userinfo", "refresh", "authcode", "client_credentials", "introspection")


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_node_modules() -> None:
    if (HERE / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found; install node 20+ / npm")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


@contextlib.contextmanager
def running_server(port: int, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``node server.mjs`` on ``port``; yield (issuer, process); stop it afterwards."""
    ensure_node_modules()
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node not found")
    env = {**os.environ, "PORT": str(port), **(extra_env or {})}
    proc = subprocess.Popen([node, "server.mjs"], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_for_discovery(issuer, proc)
        yield issuer, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if os.environ.get("PROBE_SHOW_SERVER_LOG"):
            sys.stderr.write(out.decode(errors="replace"))


def wait_for_discovery(issuer: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"{issuer}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited early ({proc.returncode}):\n{out}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"discovery did not answer within {timeout}s: {url}")


# --------------------------------------------------------------------------- scenarios


@dataclass
class BenchState:
    """What one worker needs: endpoints from discovery and its own tokens/session."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str
    discovery: dict[str, object]
    access_token: str
    refresh_token: str
    cookie_header: str
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def basic_auth(self) -> str:
        # RFC 6749 §2.3.1: form-urlencode id and secret, then base64.
        raw = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def endpoint(self, name: str) -> str:
        return str(self.discovery[name])


async def bootstrap(client: httpx.AsyncClient, issuer: str) -> BenchState:
    """GET /bench/bootstrap (oidc-provider helper) + discovery -> a worker's state."""
    disco = (await client.get(f"{issuer}/.well-known/openid-configuration")).raise_for_status().json()
    boot = (await client.get(f"{issuer}/bench/bootstrap")).raise_for_status().json()
    assert boot["access_token"] and boot["refresh_token"], boot
    assert boot["session_cookie"]["value"], boot
    return BenchState(
        issuer=issuer,
        client_id=boot["client_id"],
        client_secret=boot["client_secret"],
        redirect_uri=boot["redirect_uri"],
        scope=boot["scope"],
        discovery=disco,
        access_token=boot["access_token"],
        refresh_token=boot["refresh_token"],
        cookie_header=boot["cookie_header"],
        extra={"bootstrap": boot},
    )


async def sc_discovery(client: httpx.AsyncClient, st: BenchState) -> None:
    r = await client.get(f"{st.issuer}/.well-known/openid-configuration")
    if r.status_code != 200 or r.json()["issuer"] != st.issuer:
        raise AssertionError(f"discovery: {r.status_code} {r.text[:200]}")


async def sc_jwks(client: httpx.AsyncClient, st: BenchState) -> None:
    r = await client.get(st.endpoint("jwks_uri"))
    if r.status_code != 200 or not r.json()["keys"]:
        raise AssertionError(f"jwks: {r.status_code} {r.text[:200]}")


async def sc_userinfo(client: httpx.AsyncClient, st: BenchState) -> None:
    r = await client.get(st.endpoint("userinfo_endpoint"), headers={"Authorization": f"Bearer {st.access_token}"})
    if r.status_code != 200 or not r.json().get("sub"):
        raise AssertionError(f"userinfo: {r.status_code} {r.text[:200]}")


async def sc_refresh(client: httpx.AsyncClient, st: BenchState) -> None:
    """refresh_token grant; rotation is on, so the worker chains the new token."""
    r = await client.post(
        st.endpoint("token_endpoint"),
        headers={"Authorization": st.basic_auth},
        data={"grant_type": "refresh_token", "refresh_token": st.refresh_token},
    )
    body = r.json()
    if r.status_code != 200 or "access_token" not in body:
        raise AssertionError(f"refresh: {r.status_code} {r.text[:200]}")
    st.refresh_token = body.get("refresh_token", st.refresh_token)


async def sc_client_credentials(client: httpx.AsyncClient, st: BenchState) -> None:
    """client_credentials grant (RFC 6749 §4.4), no scope: an access token for the client itself."""
    r = await client.post(
        st.endpoint("token_endpoint"),
        headers={"Authorization": st.basic_auth},
        data={"grant_type": "client_credentials"},
    )
    if r.status_code != 200 or "access_token" not in r.json():
        raise AssertionError(f"client_credentials: {r.status_code} {r.text[:200]}")


async def sc_introspection(client: httpx.AsyncClient, st: BenchState) -> None:
    """RFC 7662: the client introspects the member's access token it holds (active)."""
    r = await client.post(
        st.endpoint("introspection_endpoint"),
        headers={"Authorization": st.basic_auth},
        data={"token": st.access_token, "token_type_hint": "access_token"},
    )
    if r.status_code != 200 or r.json().get("active") is not True:
        raise AssertionError(f"introspection: {r.status_code} {r.text[:200]}")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sc_authcode(client: httpx.AsyncClient, st: BenchState) -> None:
    """Logged-in, consented user: GET /auth (session cookie) -> 302/303 code -> POST /token."""
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    query = urlencode(
        {
            "client_id": st.client_id,
            "response_type": "code",
            "redirect_uri": st.redirect_uri,
            "scope": st.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    r = await client.get(
        f"{st.endpoint('authorization_endpoint')}?{query}",
        headers={"Cookie": st.cookie_header},
        follow_redirects=False,
    )
    location = r.headers.get("location", "")
    if r.status_code not in (302, 303) or not location.startswith(st.redirect_uri):
        raise AssertionError(f"authorize: {r.status_code} location={location!r} {r.text[:200]}")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if "code" not in params or params.get("state") != state:
        raise AssertionError(f"authorize: bad callback {location!r}")
    t = await client.post(
        st.endpoint("token_endpoint"),
        headers={"Authorization": st.basic_auth},
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": st.redirect_uri,
            "code_verifier": verifier,
        },
    )
    body = t.json()
    if t.status_code != 200 or "access_token" not in body or "id_token" not in body:
        raise AssertionError(f"token: {t.status_code} {t.text[:200]}")
    claims = jwt_claims(body["id_token"])
    if claims.get("nonce") != nonce or claims.get("iss") != st.issuer or claims.get("aud") != st.client_id:
        raise AssertionError(f"id_token claims: {claims}")


def jwt_claims(token: str) -> dict[str, object]:
    """Decode (no signature check) a JWS compact payload."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


SCENARIO_FUNCS = {
    "discovery": sc_discovery,
    "jwks": sc_jwks,
    "userinfo": sc_userinfo,
    "refresh": sc_refresh,
    "authcode": sc_authcode,
    "client_credentials": sc_client_credentials,
    "introspection": sc_introspection,
}


def new_client(limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    """Client whose cookie jar accepts nothing: cookies are always sent explicitly
    (``Cookie`` header), so Set-Cookie refreshes from /auth never pile up."""
    jar = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(timeout=10.0, cookies=jar, limits=limits or httpx.Limits())


# --------------------------------------------------------------------------- probe


async def probe(issuer: str) -> int:
    failures = 0
    async with new_client() as client:
        st = await bootstrap(client, issuer)
        for name in SCENARIOS:
            try:
                await SCENARIO_FUNCS[name](client, st)
                if name == "refresh":  # the chained token must work too
                    await sc_refresh(client, st)
                if name == "authcode":  # the same session cookie is reusable
                    await sc_authcode(client, st)
                print(f"OK {name}")
            except Exception as exc:
                failures += 1
                print(f"FAIL {name}: {exc}")

        # Gotcha check: re-using a rotated (consumed) refresh token is rejected
        # and revokes the whole grant. Done on a separate bootstrap.
        other = await bootstrap(client, issuer)
        old = other.refresh_token
        await sc_refresh(client, other)
        r = await client.post(
            other.endpoint("token_endpoint"),
            headers={"Authorization": other.basic_auth},
            data={"grant_type": "refresh_token", "refresh_token": old},
        )
        if r.status_code == 400 and r.json().get("error") == "invalid_grant":
            print("OK refresh-reuse-rejected")
        else:
            failures += 1
            print(f"FAIL refresh-reuse-rejected: {r.status_code} {r.text[:200]}")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="port for server.mjs (default: a free one)")
    args = ap.parse_args()
    port = args.port or free_port()
    with running_server(port) as (issuer, _proc):
        failures = asyncio.run(probe(issuer))
    print("all scenarios OK" if not failures else f"{failures} scenario(s) FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
