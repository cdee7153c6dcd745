"""The security page (``/account/security``: passkeys, authenticator app, recovery codes), asking
again before a sensitive change (``/account/reauth``, ``require_fresh``) and ending every other
session (``/account/sessions/end-others``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail.accounts import delays, sessions
from portail.accounts import login as authenticate
from portail.accounts.current import Login, require_verified, safe_next
from portail.accounts.members import AccountError
from portail.accounts.mfa import enrolment, factors, step_up, totp, webauthn
from portail.accounts.mfa.routes import device, relying_party
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.web import N_, TEMPLATES_ENV, FormError, _, error_page, field, flash, read_form, render, request_locale

TEMPLATES_ENV.globals["session_method"] = step_up.method_label
TEMPLATES_ENV.globals["approximate_place"] = sessions.approximate_place

DONE = {
    "totp-start": N_("Scannez le code QR, puis entrez le code affiché par l’application."),
    "totp-confirm": N_("Votre application d’authentification est configurée."),
    "totp-remove": N_("L’application d’authentification est retirée."),
    "recovery-codes": N_("Vos nouveaux codes de récupération sont prêts."),
    "passkey-add": N_("Votre clé d’accès est enregistrée."),
    "passkey-rename": N_("La clé d’accès est renommée."),
    "passkey-remove": N_("La clé d’accès est retirée."),
}


def _deps(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


# ---------------------------------------------------------------- asking again before sensitive changes


async def require_fresh(request: Request, login: Login) -> Response | None:
    """None when the session authenticated recently; else the redirect to ``/account/reauth``."""
    settings: Settings = request.app.state.settings
    if step_up.is_fresh(login.session, settings):
        return None
    flash(request, _(request, "Pour cette modification, confirmez d’abord votre identité."), "info")
    referer = request.headers.get("referer", "")
    back = "/account"
    if referer.startswith(settings.issuer + "/"):
        back = safe_next(referer[len(settings.issuer) :], "/account")
    return RedirectResponse("/account/reauth?next=" + quote(back, safe=""), status_code=303)


async def reauth(request: Request) -> Response:
    settings, db = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    member_id = login.member.id or 0
    next_url = safe_next(request.query_params.get("next"), "/account")
    context: dict[str, Any] = {"next": next_url, "has_passkeys": bool(await db.run(webauthn.passkeys, member_id))}
    if request.method == "GET":
        return render(request, "accounts/reauth.html", context)
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/reauth.html", {**context, "error": exc.message}, 400)
    context["next"] = next_url = safe_next(field(form, "next"), "/account")
    wait = await db.run(authenticate.reauthenticate_wait, member_id, device(request).ip)
    if wait:
        message = _(
            request,
            "Trop de tentatives. Réessayez dans %(delay)s.",
            delay=delays.in_words(wait, request_locale(request)),
        )
        headers = {"Retry-After": str(wait)}
        return render(request, "accounts/reauth.html", {**context, "error": message}, 429, headers=headers)
    credential = str(form.get("credential") or "")
    password_ok = not credential and await request.app.state.passwords.verify_async(
        login.member.password_hash, str(form.get("password") or "")
    )
    ok = await db.run(
        authenticate.reauthenticate,
        settings,
        relying_party(request),
        member_id,
        login.session.id or 0,
        device(request),
        password_ok=password_ok,
        credential=credential,
    )
    if not ok:
        message = _(request, "Ce n’est pas le bon mot de passe ou la bonne clé d’accès.")
        return render(request, "accounts/reauth.html", {**context, "error": message}, 401)
    return RedirectResponse(next_url, status_code=303)


# ---------------------------------------------------------------- the security page


@dataclass(frozen=True)
class SecurityView:
    factors: factors.Factors
    pending_secret: str | None
    administers: bool


def _security_view(db: Session, settings: Settings, member: Member) -> SecurityView:
    member_id = member.id or 0
    return SecurityView(
        factors.of(db, member_id),
        totp.pending_secret(db, settings.secret_key, member_id),
        settings.mfa_required_for_admins and step_up.administers_others(db, member),
    )


async def _security_page(request: Request, login: Login, error: str = "", status: int = 200) -> Response:
    settings, db = _deps(request)
    view = await db.run(_security_view, settings, login.member)
    uri = totp.provisioning_uri(view.pending_secret, login.member) if view.pending_secret else ""
    context = {
        "view": view,
        "qr_svg": totp.qr_svg(uri) if uri else "",
        "display_key": totp.display_key(view.pending_secret or ""),
        "next": safe_next(request.query_params.get("next"), ""),
        "error": error,
    }
    return render(request, "accounts/security.html", context, status)


async def security(request: Request) -> Response:
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    return await _security_page(request, login)


def _change(action: str, form: Any) -> enrolment.Change:
    raw_id = field(form, "passkey")
    return enrolment.Change(
        action=action,
        code=field(form, "code"),
        name=field(form, "name"),
        credential=str(form.get("credential") or ""),
        passkey_id=int(raw_id) if raw_id.isdigit() and len(raw_id) <= 12 else None,
    )


async def security_action(request: Request) -> Response:
    """``POST /account/security/{action}``: every change of the security page (``enrolment.ACTIONS``)."""
    settings, db = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    action = request.path_params["action"]
    if action not in enrolment.ACTIONS:
        return error_page(request, 404)
    try:
        form = await read_form(request)
    except FormError as exc:
        return await _security_page(request, login, exc.message, 400)
    if action in enrolment.SENSITIVE:
        stale = await require_fresh(request, login)
        if stale is not None:
            return stale
    next_url = safe_next(field(form, "next"), "")
    member_id, session_id = login.member.id or 0, login.session.id or 0
    try:
        codes = await db.run(
            enrolment.apply, settings, relying_party(request), member_id, session_id, _change(action, form)
        )
    except AccountError as exc:
        return await _security_page(request, login, _(request, exc.message, **exc.params), 400)
    if codes:
        context = {"codes": codes, "next": next_url or "/account/security"}
        return render(request, "accounts/recovery_codes.html", context)
    flash(request, _(request, DONE[action]), "success")
    if action == "totp-start" or not next_url:  # the QR code is on the security page (``next`` carried on)
        return RedirectResponse("/account/security" + (f"?next={quote(next_url, safe='')}" if next_url else ""), 303)
    return RedirectResponse(next_url, status_code=303)


async def end_other_sessions(request: Request) -> Response:
    """``Fermer toutes mes autres sessions``: every other session ends (their tools get back-channel logout)."""
    _settings, db = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    try:
        await read_form(request)
    except FormError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/account", status_code=303)
    member_id, session_id = login.member.id or 0, login.session.id
    ended = await db.run(sessions.end_member_sessions, member_id, "ended-by-member", keep_session_id=session_id)
    message = N_("Vos autres sessions sont fermées (%(count)s), ainsi que les outils qui les utilisaient.")
    flash(request, _(request, message, count=len(ended)), "success")
    return RedirectResponse("/account#sessions-h", status_code=303)


routes = [
    Route("/account/reauth", reauth, methods=["GET", "POST"], name="account_reauth"),
    Route("/account/security", security, methods=["GET"], name="account_security"),
    Route("/account/security/{action}", security_action, methods=["POST"], name="account_security_action"),
    Route("/account/sessions/end-others", end_other_sessions, methods=["POST"], name="account_sessions_end_others"),
]
