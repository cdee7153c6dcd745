"""Who is asking: the session cookie, the current member, and guards for pages.

The ``portail_session`` cookie holds an itsdangerous signature of the session token; a tampered
cookie is ignored (the visitor is simply not logged in). ``SessionLoader`` resolves it once per
request into ``request.state.login`` / ``request.state.member`` (and the member's language), with
the member's pending step if any (``sessions.pending_step``: a changed privacy policy to accept).

Two guards, so that no page loops or bounces:

- ``require_verified`` is THE guard of a page that needs a member: a visitor goes to the login page
  (``next`` back), an unverified member gets the "confirm your address" page in place (re-send,
  correct the address) — never a redirect to the login page (which would send them straight back)
  nor a silent bounce to the home page.
- ``PendingStepGate`` sends a member with a pending step to that step (``next`` back) from every
  page except those the step itself needs (read the policy, log out, export, delete…).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from portail.accounts import sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.web import _, flash, render

if TYPE_CHECKING:
    from portail.accounts.login import Opened
    from portail.db import Database

SESSION_COOKIE = "portail_session"
# Paths that never need the browser's login, besides the protocol endpoints ``create_app`` passes
# (``oidc.routes.MACHINE_PATHS``: bearer tokens and client credentials, never the portal session).
SKIP_PREFIXES = (
    "/static/",
    "/api/",
    "/widget/menu.js",
    "/healthz",  # a load balancer's probes: never the database for liveness
    "/readyz",
)


@dataclass(frozen=True)
class Login:
    session: LoginSession
    member: Member
    pending_step: str | None = None  # a page the member must visit first (e.g. "/privacy/review")


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


def signed_in(request: Request, settings: Settings, opened: Opened) -> Response:
    """The answer to a successful login: the session cookie, the login hooks' notices, then the destination."""
    if opened.locale:
        request.state.locale = opened.locale
    for notice in opened.notices:  # e.g. "your account's deletion is cancelled"
        flash(request, _(request, notice), "success")
    response = RedirectResponse(opened.destination, status_code=303)
    set_session_cookie(response, settings, opened.token)
    return response


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
        # Every page and every /authorize: a statement or two, nothing slow (an ended session's hooks
        # only queue rows), so inline on SQLite unless a thread is writing (``Database.run_short``).
        login = await database.run_short(resolve_login, token, request.app.state.settings)
    remember_login(request, login)
    return login


def login_pending(request: Request) -> str | None:
    """The session cookie's token when this request's login is still to be resolved (else None):
    for a route that resolves it within its own unit of work (``resolve_login``, ``remember_login``)."""
    return None if hasattr(request.state, "login") else cookie_token(request)


def remember_login(request: Request, login: Login | None) -> None:
    """This request's login, for the layouts and ``load_login``: the member and their language."""
    request.state.login = login
    request.state.member = login.member if login else None
    if login:
        request.state.locale = login.member.locale


def resolve_login(db: Session, token: str, settings: Settings) -> Login | None:
    """In ``db``'s unit of work: the session, its member, and the member's pending step (verified members)."""
    found = sessions.resolve(db, token, settings)
    if found is None:
        return None
    row, member = found
    return Login(row, member, sessions.pending_step(db, member) if member.verified else None)


class SessionLoader:
    """Loads the login of every page request so that layouts know the member and language.

    ``deferred``: exact paths whose route resolves the login itself, in the same unit of work as
    the rest of its work (``/authorize``: one unit of work instead of two, on every login to a tool).
    """

    def __init__(self, app: ASGIApp, protocol_paths: tuple[str, ...] = (), deferred: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip = (*SKIP_PREFIXES, *protocol_paths)
        self.deferred = frozenset(deferred)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope["path"])
            if not path.startswith(self.skip) and path not in self.deferred:
                await load_login(Request(scope, receive))
        await self.app(scope, receive, send)


def request_target(request: Request) -> str:
    """The local path and query of the request (what ``next`` carries back)."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request_target(request), safe='')}", status_code=303)


def unverified_page(request: Request, status_code: int = 403) -> Response:
    """The "confirm your address" page, shown in place of a page that needs a verified address."""
    next_url = request_target(request) if request.method == "GET" else "/"
    return render(request, "accounts/unverified.html", {"next": safe_next(next_url)}, status_code)


async def require_verified(request: Request) -> Login | Response:
    """The login of a member whose address is verified, or the response to answer instead: the login
    page for a visitor (``next`` back), the "confirm your address" page for an unverified member.

    Usage in a route: ``login = await require_verified(request)``, then
    ``if isinstance(login, Response): return login``.
    """
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    if not login.member.verified:
        return unverified_page(request)
    return login


class PendingStepGate:
    """Sends a member with a pending step (``Login.pending_step``) there from every page, ``next`` back.

    ``allowed`` lists the path prefixes that stay open meanwhile: the pages the step needs (the
    policy, its history, logging out, exporting, deleting the account), token links from mail, and
    ``/authorize``, whose prompts handle the step themselves (``prompt=none`` must get an OAuth error,
    not a page). An entry ending in ``/`` is a prefix; any other entry is an exact path.
    """

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exact = frozenset(a for a in allowed if not a.endswith("/"))
        self.prefixes = tuple(a for a in allowed if a.endswith("/"))

    def open(self, path: str, step: str) -> bool:
        return path == step or path in self.exact or path.startswith(self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        login = scope.get("state", {}).get("login") if scope["type"] == "http" else None
        if login is not None and login.pending_step and not self.open(str(scope["path"]), login.pending_step):
            request = Request(scope, receive)
            target = request_target(request) if request.method == "GET" else "/"
            response = RedirectResponse(sessions.step_url(login.pending_step, target), status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def action_required(issuer: str, step: str, headers: dict[str, str] | None = None, **extra: object) -> JSONResponse:
    """What a JSON endpoint answers a member with a pending step (``PendingStepGate`` redirects
    pages; a program cannot follow a redirect to a form): 403 ``action_required``, and the page to
    open in Portail (``action_url``)."""
    return JSONResponse(
        {
            "error": "action_required",
            "error_description": "Review and accept Portail's updated privacy policy first",
            "action_url": f"{issuer.rstrip('/')}{sessions.step_url(step, '/')}",
            **extra,
        },
        status_code=403,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths are honoured as ``next`` (never an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 for c in value):
        return default
    return value
