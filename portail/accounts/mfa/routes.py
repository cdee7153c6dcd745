"""Pages of second factors: the second step of a login (and the step-up of a live session), the
passwordless passkey login, the account's security page (authenticator app, passkeys, recovery
codes), asking again before a sensitive change, and the WebAuthn options endpoint.

Between the password and the second step the browser holds ``portail_second_step``: a signed,
timestamped cookie naming the member (valid ``PENDING_SECONDS``), never a session. Passkey
ceremonies run in ``static/accounts/passkeys.js``: it fetches options from ``POST /webauthn/options``
(CSRF-checked form), asks the authenticator, and submits the page's ordinary form with the
answer in its ``credential`` field, so every outcome is an ordinary page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail.accounts import login as authenticate
from portail.accounts import sessions, throttle
from portail.accounts.current import Login, load_login, require_verified, safe_next, set_session_cookie
from portail.accounts.members import AccountError, audit
from portail.accounts.mfa import factors, recovery, step_up, totp, webauthn
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.web import N_, TEMPLATES_ENV, FormError, _, error_page, field, flash, json_error, read_form, render

TEMPLATES_ENV.globals["session_method"] = step_up.method_label
TEMPLATES_ENV.globals["approximate_place"] = sessions.approximate_place

PENDING_COOKIE = "portail_second_step"
PENDING_SECONDS = 300


def _deps(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _ua(request: Request) -> str:
    return request.headers.get("user-agent", "")


def _rp(request: Request) -> webauthn.RelyingParty:
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


@dataclass(frozen=True)
class SecondStepView:
    member: Member
    has_totp: bool
    has_passkeys: bool
    step_up: bool  # a live session being strengthened (vs. a login in progress)


def _view(db: Session, member_id: int, step_up_login: bool) -> SecondStepView | None:
    member = db.get(Member, member_id)
    if member is None or not member.active:
        return None
    current = factors.of(db, member_id)
    return SecondStepView(member, current.totp is not None, bool(current.passkeys), step_up_login)


async def _second_step_target(request: Request) -> tuple[int, Login | None] | None:
    """Whose second step: the pending login's member, else the logged-in member (a step-up)."""
    pending = _pending_member_id(request)
    if pending is not None:
        return pending, None
    login = await load_login(request)
    if login is not None:
        return login.member.id or 0, login
    return None


def _second_step_page(
    request: Request, view: SecondStepView, next_url: str, error: str = "", status: int = 200
) -> Response:
    return render(
        request,
        "accounts/second_step.html",
        {
            "view": view,
            "next": next_url,
            "error": error,
            "enrol_url": "/account/security?next=" + quote(next_url, safe=""),
        },
        status,
    )


async def second_step(request: Request) -> Response:
    settings, db = _deps(request)
    next_url = safe_next(request.query_params.get("next"))
    target = await _second_step_target(request)
    if target is None:
        return RedirectResponse("/login?next=" + quote(next_url, safe=""), status_code=303)
    member_id, login = target
    view = await db.run(_view, member_id, login is not None)
    if view is None:
        return RedirectResponse("/login", status_code=303)
    if request.method == "GET":
        return _second_step_page(request, view, next_url)
    try:
        form = await read_form(request)
    except FormError as exc:
        return _second_step_page(request, view, next_url, exc.message, 400)
    next_url = safe_next(field(form, "next") or next_url)
    ip = _ip(request)
    outcome = await db.run(
        _check_second_step,
        settings,
        _rp(request),
        member_id,
        field(form, "code"),
        str(form.get("credential") or ""),
        ip,
    )
    if isinstance(outcome, int):
        message = _(request, "Trop de tentatives. Réessayez dans %(seconds)s secondes.", seconds=outcome)
        return render(
            request,
            "accounts/second_step.html",
            {"view": view, "next": next_url, "error": message, "enrol_url": "/account/security"},
            429,
            headers={"Retry-After": str(outcome)},
        )
    if isinstance(outcome, Rejected):
        return _second_step_page(request, view, next_url, _(request, outcome.message), 401)
    if outcome.remaining is not None:
        flash(
            request,
            _(request, "Code de récupération accepté. Il vous en reste %(count)s.", count=outcome.remaining),
            "warning",
        )
    if login is not None:
        await db.run(step_up.strengthen, login.session.id or 0, outcome.amr)
        return RedirectResponse(next_url, status_code=303)
    opened = await db.run(
        _open_after_second_step, settings, member_id, f"pwd {outcome.amr}", _ua(request), ip, next_url
    )
    response = RedirectResponse(opened.destination, status_code=303)
    set_session_cookie(response, settings, opened.token)
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


@dataclass(frozen=True)
class Passed:
    amr: str
    remaining: int | None = None  # recovery codes left, when one was used


@dataclass(frozen=True)
class Rejected:
    message: str


def _check_second_step(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, member_id: int, code: str, credential: str, ip: str
) -> Passed | Rejected | int:
    """One unit of work: throttle, then the code (authenticator or recovery) or the passkey."""
    wait = authenticate.second_step_wait(db, member_id, ip)
    if wait:
        return wait
    passed: Passed | None = None
    failure = N_("Ce code est incorrect ou a déjà servi.")
    if credential:
        asserted = webauthn.authenticate(db, rp, "second", credential, member_id)
        if isinstance(asserted, webauthn.PasskeyRefused):
            failure = asserted.message
        else:
            passed = Passed("hwk user" if asserted.user_verified else "hwk")
    elif totp.verify(db, settings.secret_key, member_id, code):
        passed = Passed("otp")
    else:
        remaining = recovery.use(db, member_id, code)
        if remaining is not None:
            passed = Passed("otp", remaining)
            member = db.get(Member, member_id)
            if member is not None:
                audit(
                    db, "mfa.recovery_code_used", member_id=member_id, subject_type="member", subject_id=str(member_id)
                )
                factors.notify(db, settings, member, factors.RECOVERY_USED)
    if passed is None:
        authenticate.second_step_failed(db, settings, member_id, ip)
        return Rejected(failure)
    authenticate.second_step_passed(db, member_id)
    return passed


def _open_after_second_step(
    db: Session, settings: Settings, member_id: int, amr: str, user_agent: str, ip: str, next_url: str
) -> authenticate.Opened:
    member = db.get(Member, member_id)
    assert member is not None
    return authenticate.open_session(db, settings, member, step_up.merged_amr(amr, ""), user_agent, ip, next_url)


# ---------------------------------------------------------------- passwordless login


async def passkey_login(request: Request) -> Response:
    settings, db = _deps(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/login.html", {"next": "/", "email": "", "error": exc.message}, 400)
    next_url = safe_next(field(form, "next"))
    outcome = await db.run(
        _passkey_login, settings, _rp(request), str(form.get("credential") or ""), _ua(request), _ip(request), next_url
    )
    if isinstance(outcome, webauthn.PasskeyRefused):
        context = {"next": next_url, "email": "", "error": _(request, outcome.message)}
        return render(request, "accounts/login.html", context, 401)
    response = RedirectResponse(outcome.destination, status_code=303)
    set_session_cookie(response, settings, outcome.token)
    return response


def _passkey_login(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, credential: str, user_agent: str, ip: str, next_url: str
) -> authenticate.Opened | webauthn.PasskeyRefused:
    asserted = webauthn.authenticate(db, rp, "login", credential, None)
    if isinstance(asserted, webauthn.PasskeyRefused):
        return asserted
    member = db.get(Member, asserted.passkey.member_id)
    if member is None or not member.active:
        return webauthn.PasskeyRefused("Cette clé d’accès n’est pas enregistrée dans Portail.")
    return authenticate.open_session(db, settings, member, "hwk user mfa", user_agent, ip, next_url)


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
    member_id: int | None = None
    login = await load_login(request)
    if purpose == "second":
        target = await _second_step_target(request)
        member_id = target[0] if target else None
    elif purpose in ("register", "reauth"):
        member_id = login.member.id if login else None
    if purpose != "login" and member_id is None:
        return json_error("login_required", _(request, "Connectez-vous d’abord."), 401)
    if purpose == "register":
        assert login is not None
        options: str | None = await db.run(webauthn.registration_options, _rp(request), login.member)
    else:
        options = await db.run(webauthn.authentication_options, _rp(request), purpose, member_id)
    if options is None:
        return json_error("no_passkey", _(request, "Aucune clé d’accès n’est enregistrée pour ce compte."), 404)
    return Response(options, media_type="application/json", headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- asking again before sensitive changes


async def require_fresh(request: Request, login: Login) -> Response | None:
    """None when the session authenticated recently; else the redirect to ``/account/reauth``."""
    if step_up.is_fresh(login.session, request.app.state.settings):
        return None
    flash(request, _(request, "Pour cette modification, confirmez d’abord votre identité."), "info")
    referer = request.headers.get("referer", "")
    back = "/account"
    issuer = request.app.state.settings.issuer
    if referer.startswith(issuer + "/"):
        back = safe_next(referer[len(issuer) :], "/account")
    return RedirectResponse("/account/reauth?next=" + quote(back, safe=""), status_code=303)


async def reauth(request: Request) -> Response:
    settings, db = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    next_url = safe_next(request.query_params.get("next"), "/account")
    has_passkeys = bool(await db.run(webauthn.passkeys, login.member.id or 0))
    context: dict[str, Any] = {"next": next_url, "has_passkeys": has_passkeys}
    if request.method == "GET":
        return render(request, "accounts/reauth.html", context)
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/reauth.html", {**context, "error": exc.message}, 400)
    next_url = safe_next(field(form, "next"), "/account")
    context["next"] = next_url
    credential = str(form.get("credential") or "")
    key = authenticate.second_step_key(login.member.id or 0)
    ip = _ip(request)
    wait = await db.run(_reauth_wait, key, ip)
    if wait:
        message = _(request, "Trop de tentatives. Réessayez dans %(seconds)s secondes.", seconds=wait)
        return render(
            request, "accounts/reauth.html", {**context, "error": message}, 429, headers={"Retry-After": str(wait)}
        )
    if credential:
        asserted = await db.run(webauthn.authenticate, _rp(request), "reauth", credential, login.member.id or 0)
        ok = not isinstance(asserted, webauthn.PasskeyRefused)
    else:
        ok = await request.app.state.passwords.verify_async(login.member.password_hash, str(form.get("password") or ""))
    if not ok:
        await db.run(authenticate.second_step_failed, settings, login.member.id or 0, ip)
        message = _(request, "Ce n’est pas le bon mot de passe ou la bonne clé d’accès.")
        return render(request, "accounts/reauth.html", {**context, "error": message}, 401)
    await db.run(step_up.reauthenticated, login.session.id or 0)
    return RedirectResponse(next_url, status_code=303)


def _reauth_wait(db: Session, key: str, ip: str) -> int:
    return throttle.retry_after(db, key, ip)


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
    return render(
        request,
        "accounts/security.html",
        {
            "view": view,
            "totp_uri": uri,
            "qr_svg": totp.qr_svg(uri) if uri else "",
            "next": safe_next(request.query_params.get("next"), ""),
            "error": error,
        },
        status,
    )


async def security(request: Request) -> Response:
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    return await _security_page(request, login)


def _codes_page(request: Request, codes: list[str], next_url: str) -> Response:
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": next_url or "/account/security"})


async def security_action(request: Request) -> Response:
    """``POST /account/security/{action}``: every change of the security page."""
    settings, db = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    action = request.path_params["action"]
    if action not in ACTIONS:
        return error_page(request, 404)
    try:
        form = await read_form(request)
    except FormError as exc:
        return await _security_page(request, login, exc.message, 400)
    if action in FRESH_ACTIONS:
        stale = await require_fresh(request, login)
        if stale is not None:
            return stale
    next_url = safe_next(field(form, "next"), "")
    try:
        codes = await db.run(ACTIONS[action], settings, _rp(request), login, form)
    except AccountError as exc:
        return await _security_page(request, login, _(request, exc.message, **exc.params), 400)
    if codes:
        return _codes_page(request, codes, next_url)
    flash(request, _(request, DONE[action]), "success")
    if action == "totp-start" or not next_url:  # the QR code is on the security page (``next`` carried on)
        return RedirectResponse("/account/security" + (f"?next={quote(next_url, safe='')}" if next_url else ""), 303)
    return RedirectResponse(next_url, status_code=303)


def _member(db: Session, login: Login) -> Member:
    member = db.get(Member, login.member.id)
    assert member is not None
    return member


def _totp_start(db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any) -> None:
    totp.start(db, settings.secret_key, _member(db, login))


def _added(db: Session, settings: Settings, login: Login, amr: str, what: str) -> list[str] | None:
    member = _member(db, login)
    step_up.strengthen(db, login.session.id or 0, amr)
    audit(db, what, actor_id=member.id, member_id=member.id, subject_type="member", subject_id=str(member.id))
    factors.notify(db, settings, member, factors.FACTOR_ADDED)
    return factors.codes_for_first_factor(db, member.id or 0)


def _totp_confirm(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any
) -> list[str] | None:
    totp.confirm(db, settings.secret_key, _member(db, login), field(form, "code"))
    return _added(db, settings, login, "otp", "mfa.totp_added")


def _totp_remove(db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any) -> None:
    member = _member(db, login)
    factors.check_removable(db, settings, member, removing_totp=True, passkey_id=None)
    if totp.remove(db, member.id or 0):
        audit(
            db,
            "mfa.totp_removed",
            actor_id=member.id,
            member_id=member.id,
            subject_type="member",
            subject_id=str(member.id),
        )
        factors.notify(db, settings, member, factors.FACTOR_REMOVED)


def _recovery_generate(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any
) -> list[str]:
    member = _member(db, login)
    if not factors.enrolled(db, member.id or 0):
        raise AccountError("Ajoutez d’abord une application d’authentification ou une clé d’accès.")
    codes = recovery.generate(db, member.id or 0)
    audit(
        db,
        "mfa.recovery_regenerated",
        actor_id=member.id,
        member_id=member.id,
        subject_type="member",
        subject_id=str(member.id),
    )
    factors.notify(db, settings, member, factors.RECOVERY_REGENERATED)
    return codes


def _passkey_add(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any
) -> list[str] | None:
    result = webauthn.register(db, rp, _member(db, login), str(form.get("credential") or ""), field(form, "name"))
    if isinstance(result, webauthn.PasskeyRefused):
        raise AccountError(result.message)
    return _added(db, settings, login, "hwk", "mfa.passkey_added")


def _passkey_id(form: Any) -> int:
    raw = field(form, "passkey")
    if not raw.isdigit() or len(raw) > 12:
        raise AccountError("Cette clé d’accès n’existe pas.")
    return int(raw)


def _passkey_rename(db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any) -> None:
    result = webauthn.rename(db, login.member.id or 0, _passkey_id(form), field(form, "name"))
    if isinstance(result, webauthn.PasskeyRefused):
        raise AccountError(result.message)


def _passkey_remove(db: Session, settings: Settings, rp: webauthn.RelyingParty, login: Login, form: Any) -> None:
    member = _member(db, login)
    passkey_id = _passkey_id(form)
    if not any(p.id == passkey_id for p in webauthn.passkeys(db, member.id or 0)):
        raise AccountError("Cette clé d’accès n’existe pas.")
    factors.check_removable(db, settings, member, removing_totp=False, passkey_id=passkey_id)
    webauthn.remove(db, member.id or 0, passkey_id)
    audit(
        db,
        "mfa.passkey_removed",
        actor_id=member.id,
        member_id=member.id,
        subject_type="passkey",
        subject_id=str(passkey_id),
    )
    factors.notify(db, settings, member, factors.FACTOR_REMOVED)


ACTIONS = {
    "totp-start": _totp_start,
    "totp-confirm": _totp_confirm,
    "totp-remove": _totp_remove,
    "recovery-codes": _recovery_generate,
    "passkey-add": _passkey_add,
    "passkey-rename": _passkey_rename,
    "passkey-remove": _passkey_remove,
}
FRESH_ACTIONS = {"totp-remove", "recovery-codes", "passkey-remove"}
DONE = {
    "totp-start": N_("Scannez le code QR, puis entrez le code affiché par l’application."),
    "totp-confirm": N_("Votre application d’authentification est configurée."),
    "totp-remove": N_("L’application d’authentification est retirée."),
    "recovery-codes": N_("Vos nouveaux codes de récupération sont prêts."),
    "passkey-add": N_("Votre clé d’accès est enregistrée."),
    "passkey-rename": N_("La clé d’accès est renommée."),
    "passkey-remove": N_("La clé d’accès est retirée."),
}


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
    ended = await db.run(
        sessions.end_member_sessions, login.member.id or 0, "ended-by-member", keep_session_id=login.session.id
    )
    flash(
        request,
        _(
            request,
            "Vos autres sessions sont fermées (%(count)s), ainsi que les outils qui les utilisaient.",
            count=len(ended),
        ),
        "success",
    )
    return RedirectResponse("/account#sessions-h", status_code=303)


routes = [
    Route("/login/second-step", second_step, methods=["GET", "POST"], name="login_second_step"),
    Route("/login/passkey", passkey_login, methods=["POST"], name="login_passkey"),
    Route("/webauthn/options", webauthn_options, methods=["POST"], name="webauthn_options"),
    Route("/account/reauth", reauth, methods=["GET", "POST"], name="account_reauth"),
    Route("/account/security", security, methods=["GET"], name="account_security"),
    Route("/account/security/{action}", security_action, methods=["POST"], name="account_security_action"),
    Route("/account/sessions/end-others", end_other_sessions, methods=["POST"], name="account_sessions_end_others"),
]
