"""Helpers for tests that drive the OpenID Connect provider over HTTP (integration, interop, bench).

``make_client`` registers a client directly in the database; ``Flow`` walks an authorization code
flow with PKCE through the real endpoints (login form, consent page, token endpoint)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import Session, SQLModel, select
from starlette.testclient import TestClient

from portail import db as database
from portail.config import Settings
from portail.oidc import clients, keys
from tests.conftest import BASE_URL, PASSWORD

REDIRECT_URI = "http://localhost:9000/callback"


def make_client(settings: Settings, **spec: Any) -> tuple[str, str | None]:
    """Create a client (confidential unless ``public=True``); returns its id and secret."""
    values: dict[str, Any] = {"name": "Outil de test", "redirect_uris": [REDIRECT_URI]}
    values.update(spec)
    handle = database.Database(settings)
    try:
        with handle.session() as session:
            row, secret = clients.create_client(session, clients.ClientSpec(**values))
            return row.client_id, secret
    finally:
        handle.dispose()


def rows(settings: Settings, model: type[SQLModel]) -> list[Any]:
    """Every row of a table (to check what a request created)."""
    handle = database.Database(settings)
    try:
        with handle.session() as session:
            return list(session.exec(select(model)))
    finally:
        handle.dispose()


def change(settings: Settings, fn: Callable[[Session], None]) -> None:
    """Run ``fn(session)`` in one committed unit of work (to age a code, disable a client…), which
    carries the stored signing keys as the application's do (``keys.attach``)."""
    handle = database.Database(settings)
    keys.attach(handle, settings)
    try:
        with handle.session() as session:
            fn(session)
    finally:
        handle.dispose()


FORM_RE = re.compile(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', re.S)


def form_token(html: str, action_prefix: str) -> str:
    """The CSRF token inside the form whose action starts with ``action_prefix`` (what a browser
    submits; not merely the first token of the page)."""
    for action, body in FORM_RE.findall(html):
        if action.startswith(action_prefix):
            match = re.search(r'name="csrf_token" value="([^"]*)"', body)
            assert match and match.group(1), f"the form {action} has no CSRF token"
            return match.group(1)
    raise AssertionError(f"no form posting to {action_prefix}")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass
class Flow:
    """One authorization-code flow of one client for the browser ``http``."""

    http: TestClient
    client_id: str
    secret: str | None = None
    redirect_uri: str = REDIRECT_URI
    scope: str = "openid profile email"
    verifier: str = ""
    challenge: str = ""
    state: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(8))

    def __post_init__(self) -> None:
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()

    def params(self, **extra: str) -> dict[str, str]:
        values = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        values.update(extra)
        return {k: v for k, v in values.items() if v is not None}

    def authorize(self, **extra: str) -> httpx.Response:
        return self.http.get("/authorize?" + urlencode(self.params(**extra)))

    def log_in(self, location: str, email: str = "alice@example.org", password: str = PASSWORD) -> httpx.Response:
        """Fill the login form the authorization request led to; returns the redirect it answers."""
        page = self.http.get(location)
        assert page.status_code == 200, page.text
        next_url = query_of(location)["next"]
        return self.http.post(
            "/login",
            data={
                "email": email,
                "password": password,
                "csrf_token": form_token(page.text, "/login"),
                "next": next_url,
            },
        )

    def consent(self, location: str, decision: str = "allow") -> httpx.Response:
        page = self.http.get(location)
        assert page.status_code == 200, page.text
        return self.http.post(location, data={"decision": decision, "csrf_token": form_token(page.text, location)})

    def code(self, **extra: str) -> dict[str, str]:
        """Walk login (if needed) and consent (if asked) to the client's callback; its parameters."""
        response = self.authorize(**extra)
        for _ in range(6):
            assert response.status_code in (302, 303), response.text
            location = response.headers["location"]
            if location.startswith(self.redirect_uri):
                return query_of(location)
            if location.startswith("/login"):
                response = self.log_in(location)
            elif location.startswith("/authorize/consent/"):
                response = self.consent(location)
            else:
                response = self.http.get(location)
        raise AssertionError("the flow did not reach the client")

    def token(self, code: str, **extra: str) -> httpx.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        data["code_verifier"] = self.verifier
        data.update(extra)
        headers = basic(self.client_id, self.secret) if self.secret else {}
        if not self.secret:
            data["client_id"] = self.client_id
        return self.http.post("/token", data=data, headers=headers)

    def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        headers = basic(self.client_id, self.secret) if self.secret else {}
        if not self.secret:
            data["client_id"] = self.client_id
        return self.http.post("/token", data=data, headers=headers)

    def tokens(self, **extra: str) -> dict[str, Any]:
        response = self.token(self.code(**extra)["code"])
        assert response.status_code == 200, response.text
        return dict(response.json())


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def client_assertion(client_id: str, key: RSAKey, kid: str, **overrides: Any) -> str:
    """A private_key_jwt client assertion (RFC 7523 §3) for the token endpoint, valid one minute."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{BASE_URL}/token",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
    }
    claims.update(overrides)
    return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)


def token_with_assertion(http: TestClient, assertion: str) -> httpx.Response:
    """A client_credentials grant authenticated by ``assertion``."""
    return http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def decode(http: TestClient, token: str) -> dict[str, Any]:
    """Verify a JWT against the provider's published JWKS, as a client would."""
    keyset = KeySet.import_key_set(http.get("/jwks").json())
    return dict(jwt.decode(token, keyset, algorithms=["RS256", "ES256"]).claims)


__all__ = [
    "ASSERTION_TYPE",
    "BASE_URL",
    "REDIRECT_URI",
    "Flow",
    "basic",
    "change",
    "client_assertion",
    "decode",
    "make_client",
    "pkce_pair",
    "query_of",
    "rows",
    "token_with_assertion",
]
