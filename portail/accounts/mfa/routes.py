"""Pages of the login's second factors: the second step (``/login/second-step``, also the step-up of
a live session), the passwordless passkey login (``/login/passkey``) and the WebAuthn options
endpoint (``/webauthn/options``). The security page and asking again live in ``security_routes.py``.

Between the password and the second step the browser holds ``portail_second_step``: a signed,
timestamped cookie naming the member (valid ``PENDING_SECONDS``), never a session. Passkey
ceremonies run in ``static/accounts/passkeys.js``: it fetches options from ``POST /webauthn/options``
(CSRF-checked form), asks the authenticator, and submits the page's ordinary form with the answer
in its ``credential`` field, so every outcome is an ordinary page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail import metrics
from portail.accounts import delays
from portail.accounts import login as authenticate
from portail.accounts.current import Login, load_login, safe_next, signed_in
from portail.accounts.mfa import factors, webauthn
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.web import FormError, _, field, flash, json_error, read_form, render, request_locale

PENDING_COOKIE = "portail_second_step"
PENDING_SECONDS = 300


def _deps(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


def device(request: Request) -> authenticate.Device:
    return authenticate.Device(request.headers.get("user-agent", ""), request.client.host if request.client else "")


def relying_party(request: Request) -> webauthn.RelyingParty:
    return webauthn.relying_party(request.app.state.settings.issuer)


# ---------------------------------------------------------------- the pending second step


def _pending_signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="portail.second-step")


def set_pending(response: Response, settings: Settings, member_id: int) -> None:
    """After a right password, remember (signed, five minutes) whose second step this browser owes."""
    response.set_cookie(
        PENDING_COOKIE,
        _pending_signer(settings).dumps({"member": member_id}),
        max_age=PENDING_SECONDS,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )


def _pending_member_id(request: Request) -> int | None:
    raw = request.cookies.get(PENDING_COOKIE)
    if not raw:
        return None
    try:
        value = _pending_signer(request.app.state.settings).loads(raw, max_age=PENDING_SECONDS)
    except BadSignature:
        return None
    member = value.get("member") if isinstance(value, dict) else None
    return member if isinstance(member, int) else None


async def _second_step_target(request: Request) -> tuple[int, Login | None] | None:
    """Whose second step: the pending login's member, else the logged-in member (a step-up)."""
    pending = _pending_member_id(request)
    if pending is not None:
        return pending, None
    login = await load_login(request)
    if login is not None:
        return login.member.id or 0, login
    return None


@dataclass(frozen=True)
class SecondStepView:
    member: Member
    has_totp: bool
    has_passkeys: bool


def _view(db: Session, member_id: int) -> SecondStepView | None:
    member = db.get(Member, member_id)
    if member is None or not member.active:
        return None
    current = factors.of(db, member_id)
    return SecondStepView(member, current.totp is not None, bool(current.passkeys))


def _page(
    request: Request, view: SecondStepView, next_url: str, error: str = "", status: int = 200, **headers: str
) -> Response:
    context = {"view": view, "next": next_url, "error": error, "enrol_url": f"/account/security?next={quote(next_url)}"}
    return render(request, "accounts/second_step.html", context, status, headers=headers)


async def second_step(request: Request) -> Response:
    settings, db = _deps(request)
    next_url = safe_next(request.query_params.get("next"))
    target = await _second_step_target(request)
    if target is None:
        return RedirectResponse("/login?next=" + quote(next_url, safe=""), status_code=303)
    member_id, login = target
    view = await db.run(_view, member_id)
    if view is None:
        return RedirectResponse("/login", status_code=303)
    if request.method == "GET":
        return _page(request, view, next_url)
    try:
        form = await read_form(request)
    except FormError as exc:
        return _page(request, view, next_url, exc.message, 400)
    next_url = safe_next(field(form, "next") or next_url)
    answer = (field(form, "code"), str(form.get("credential") or ""))
    session_id = login.session.id or 0 if login is not None else None
    outcome = await db.run(
        authenticate.second_step,
        settings,
        relying_party(request),
        member_id,
        answer,
        device(request),
        next_url,
        session_id,
    )
    if isinstance(outcome, authenticate.Rejected):
        metrics.LOGINS.labels("second_step", "throttled" if outcome.retry_after else "failure").inc()
        if outcome.retry_after:
            message = _(request, outcome.message, delay=delays.in_words(outcome.retry_after, request_locale(request)))
            return _page(request, view, next_url, message, 429, **{"Retry-After": str(outcome.retry_after)})
        return _page(request, view, next_url, _(request, outcome.message), 401)
    if outcome.recovery_left is not None:
        left = _(request, "Code de récupération accepté. Il vous en reste %(count)s.", count=outcome.recovery_left)
        flash(request, left, "warning")
    if outcome.opened is None:
        return RedirectResponse(next_url, status_code=303)
    metrics.LOGINS.labels("second_step", "success").inc()
    response = signed_in(request, settings, outcome.opened)
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- passwordless login


async def passkey_login(request: Request) -> Response:
    settings, db = _deps(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/login.html", {"next": "/", "email": "", "error": exc.message}, 400)
    next_url = safe_next(field(form, "next"))
    credential = str(form.get("credential") or "")
    outcome = await db.run(
        authenticate.passwordless, settings, relying_party(request), credential, device(request), next_url
    )
    if isinstance(outcome, webauthn.PasskeyRefused):
        metrics.LOGINS.labels("passkey", "failure").inc()
        context = {"next": next_url, "email": "", "error": _(request, outcome.message)}
        return render(request, "accounts/login.html", context, 401)
    metrics.LOGINS.labels("passkey", "success").inc()
    return signed_in(request, settings, outcome)


# ---------------------------------------------------------------- WebAuthn options (JSON)


async def webauthn_options(request: Request) -> Response:
    """``POST /webauthn/options`` (form: ``csrf_token``, ``purpose``): the options of one ceremony."""
    _settings, db = _deps(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return json_error("invalid_request", exc.message, 400)
    purpose = field(form, "purpose")
    if purpose not in webauthn.PURPOSES:
        return json_error("invalid_request", _(request, "Cette demande est invalide."), 400)
    login = await load_login(request)
    member_id: int | None = None
    if purpose == "second":
        target = await _second_step_target(request)
        member_id = target[0] if target else None
    elif purpose in ("register", "reauth") and login is not None:
        member_id = login.member.id
    if purpose != "login" and member_id is None:
        return json_error("login_required", _(request, "Connectez-vous d’abord."), 401)
    rp = relying_party(request)
    if purpose == "register" and login is not None:
        options: str | None = await db.run(webauthn.registration_options, rp, login.member)
    else:
        options = await db.run(webauthn.authentication_options, rp, purpose, member_id)
    if options is None:
        return json_error("no_passkey", _(request, "Aucune clé d’accès n’est enregistrée pour ce compte."), 404)
    return Response(options, media_type="application/json", headers={"Cache-Control": "no-store"})


routes = [
    Route("/login/second-step", second_step, methods=["GET", "POST"], name="login_second_step"),
    Route("/login/passkey", passkey_login, methods=["POST"], name="login_passkey"),
    Route("/webauthn/options", webauthn_options, methods=["POST"], name="webauthn_options"),
]
