"""Second factors through the HTML forms, as a member does it: enrol an authenticator app from the
security page (codes computed with pyotp from the secret the page shows) and answer the second step."""

from __future__ import annotations

import re
import time

import httpx
import pyotp
from starlette.testclient import TestClient

from tests.conftest import PASSWORD, csrf_from

SECRET_RE = re.compile(r"Clé : ([A-Z2-7]{4}(?: [A-Z2-7]{1,4})+)")
CODE_RE = re.compile(r"<code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code>")


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """The code of the current 30-second step, or of a later one (a fresh code, never a replay)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def post(
    client: TestClient, action: str, data: dict[str, str] | None = None, page: str = "/account/security"
) -> httpx.Response:
    token = csrf_from(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **(data or {})})


def enrol_totp(client: TestClient, next_url: str = "") -> tuple[str, list[str], httpx.Response]:
    """Enrol an authenticator app; returns its secret, the recovery codes shown and the codes page."""
    secret, codes, page, _used = enrol_totp_with_code(client, next_url)
    return secret, codes, page


def enrol_totp_with_code(client: TestClient, next_url: str = "") -> tuple[str, list[str], httpx.Response, str]:
    """``enrol_totp``, and the code the enrolment used (to replay it: a code computed again later may
    belong to the next 30-second step, and would then be a fresh code)."""
    started = post(client, "/account/security/totp-start", {"next": next_url})
    assert started.status_code == 303
    page = client.get(started.headers["location"])
    assert "<svg" in page.text and "otpauth" not in page.text  # the QR code is drawn here, the URI not leaked
    shown = SECRET_RE.search(page.text)
    assert shown, page.text
    secret = shown.group(1).replace(" ", "")
    used = code_at(secret)
    confirmed = post(client, "/account/security/totp-confirm", {"code": used, "next": next_url})
    assert confirmed.status_code == 200, confirmed.text
    return secret, CODE_RE.findall(confirmed.text), confirmed, used


def password_step(client: TestClient, email: str = "alice@example.org", next_url: str = "/") -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text), "next": next_url}
    )


def second_step(client: TestClient, code: str, next_url: str = "/") -> httpx.Response:
    page = client.get(f"/login/second-step?next={next_url}")
    return client.post(
        f"/login/second-step?next={next_url}", data={"code": code, "csrf_token": csrf_from(page.text), "next": next_url}
    )
