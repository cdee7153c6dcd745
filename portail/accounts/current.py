"""Who is asking: the session cookie, the current member, and guards for pages.

The ``portail_session`` cookie holds an itsdangerous signature of the session token; a tampered
cookie is ignored (the visitor is simply not logged in). ``SessionLoader`` resolves it once per
request into ``request.state.login`` / ``request.state.member`` (and the member's language).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from portail.accounts import sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings

if TYPE_CHECKING:
    from portail.db import Database

SESSION_COOKIE = "portail_session"
SKIP_PREFIXES = (
    "/static/",
    "/.well-known/",
    "/jwks",
    "/token",
    "/api/",
    "/introspect",
    "/userinfo",  # bearer tokens only: the portal session is never needed there
    "/revoke",
    "/register",
    "/widget/menu.js",
    "/healthz",  # a load balancer's probes: never the database for liveness
    "/readyz",
)


@dataclass(frozen=True)
class Login:
    session: LoginSession
    member: Member


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="portail.session")


def cookie_token(request: Request) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        token = _signer(request.app.state.settings).loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        _signer(settings).dumps(token),
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=settings.secure_cookies, httponly=True, samesite="lax")


async def load_login(request: Request) -> Login | None:
    """Resolve (once per request) the session cookie to a live session and member."""
    if hasattr(request.state, "login"):
        return request.state.login  # type: ignore[no-any-return]
    login: Login | None = None
    token = cookie_token(request)
    if token:
        database: Database = request.app.state.db
        found = await database.run(sessions.resolve, token, request.app.state.settings)
        if found is not None:
            login = Login(*found)
    request.state.login = login
    request.state.member = login.member if login else None
    if login:
        request.state.locale = login.member.locale
    return login


class SessionLoader:
    """Loads the login of every page request so that layouts know the member and language."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not str(scope["path"]).startswith(SKIP_PREFIXES):
            await load_login(Request(scope, receive))
        await self.app(scope, receive, send)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def require_verified(request: Request) -> Login | RedirectResponse:
    """The login of a member whose address is verified, or the redirect to answer instead: the login
    page for a visitor, the home page (which only offers to re-send the email) for an unverified member.

    Usage in a route: ``login = await require_verified(request)``, then
    ``if isinstance(login, Response): return login``.
    """
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    if not login.member.verified:
        return RedirectResponse("/", status_code=303)
    return login


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths are honoured as ``next`` (never an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 for c in value):
        return default
    return value
