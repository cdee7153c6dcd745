"""Account pages: sign up, verify, log in and out, recover, manage the account, pick a language.

Each handler parses the form, makes one domain call (``flows``, ``sessions``, ``members``) and
renders; every refusal re-renders the form with a translated message and a 4xx status.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail.accounts import delays, devices, flows, links, mail_limits, members, organizations, policy, sessions
from portail.accounts import login as authenticate
from portail.accounts.current import (
    clear_session_cookie,
    load_login,
    login_redirect,
    require_verified,
    safe_next,
    signed_in,
)
from portail.accounts.members import AccountError, FieldErrors, normalize_email
from portail.accounts.mfa import factors, security_routes, step_up
from portail.accounts.mfa import routes as mfa_routes
from portail.accounts.models import LoginSession, Member
from portail.accounts.passwords import COMMON_PASSWORDS, Passwords
from portail.config import Settings
from portail.db import Database
from portail.web import LANG_COOKIE, LOCALES, N_, FormError, _, field, flash, read_form, render, request_locale


def _deps(request: Request) -> tuple[Settings, Database, Passwords]:
    state = request.app.state
    return state.settings, state.db, state.passwords


def _base_url(request: Request) -> str:
    return str(request.app.state.settings.issuer)


def _error(request: Request, exc: AccountError) -> str:
    return _(request, exc.message, **exc.params)


async def _link_refused(request: Request, exc: AccountError, title: str) -> Response:
    """A mailed link that does not work: why (used, replaced by a newer one, expired...) and what to do next."""
    link = exc if isinstance(exc, links.LinkError) else None
    context = {
        "title": title,
        "error": None if link and link.reason == "confirmed" else _error(request, exc),
        "text": _error(request, exc) if link and link.reason == "confirmed" else "",
        "link": {"reason": link.reason, "purpose": link.purpose} if link else None,
        "signed_in": await load_login(request) is not None,
    }
    return render(request, "accounts/message.html", context, 200 if context["text"] else 400)


def _field_errors(request: Request, exc: FieldErrors) -> dict[str, str]:
    """Each refused field's error in the member's language, in the form's order (``_macros.html`` shows them)."""
    return {name: _error(request, error) for name, error in exc.errors.items()}


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def _mail_verdict(request: Request, address: str) -> mail_limits.Verdict:
    """Count a request that mails ``address`` (``mail_limits``): send, stay silent, or refuse."""
    limiter: mail_limits.MailLimiter = request.app.state.mail_limiter
    return await limiter.check(address, _client_ip(request))


def _too_many_mails(request: Request, verdict: mail_limits.Verdict) -> str:
    return _(
        request,
        "Trop de demandes d’envoi de courriel depuis votre connexion. Réessayez dans %(delay)s.",
        delay=delays.in_words(verdict.retry_after, request_locale(request)),
    )


def _retry_headers(verdict: mail_limits.Verdict) -> dict[str, str]:
    return {"Retry-After": str(verdict.retry_after)}


# ---------------------------------------------------------------- sign up and verification


async def signup(request: Request) -> Response:
    settings, db, passwords = _deps(request)
    values: dict[str, Any] = {"name": "", "email": ""}
    if request.method == "GET":
        return render(request, "accounts/signup.html", {"values": values})
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/signup.html", {"values": values, "error": exc.message}, 400)
    values = {"name": field(form, "name"), "email": field(form, "email")}
    values |= {"accept_terms": form.get("accept_terms") == "on", "accept_privacy": form.get("accept_privacy") == "on"}
    signup_form = flows.SignUp(
        name=values["name"],
        email=values["email"],
        password=str(form.get("password") or ""),
        accept_terms=form.get("accept_terms") == "on",
        accept_privacy=form.get("accept_privacy") == "on",
        locale=request_locale(request),
    )
    try:
        flows.validate_sign_up(signup_form, settings)
        verdict = await _mail_verdict(request, signup_form.email)
        if verdict.retry_after:
            error = _too_many_mails(request, verdict)
            context = {"values": values, "error": error}
            return render(request, "accounts/signup.html", context, 429, headers=_retry_headers(verdict))
        password_hash = await passwords.hash_async(signup_form.password)
        await db.run(flows.sign_up, settings, signup_form, password_hash, _base_url(request), send_mail=verdict.send)
    except FieldErrors as exc:
        context = {"values": values, "field_errors": _field_errors(request, exc)}
        return render(request, "accounts/signup.html", context, 400)
    except AccountError as exc:
        return render(request, "accounts/signup.html", {"values": values, "error": _error(request, exc)}, 400)
    return render(request, "accounts/signup_sent.html", {"email": values["email"]})


async def verify(request: Request) -> Response:
    settings, db, _p = _deps(request)
    token = request.query_params.get("token", "")
    try:
        await db.run(flows.verify_email, settings, token)
    except AccountError as exc:
        return await _link_refused(request, exc, _(request, "Vérification"))
    flash(request, _(request, "Votre adresse courriel est confirmée."), "success")
    login = await load_login(request)
    return RedirectResponse("/" if login else "/login", status_code=303)


async def resend_verification(request: Request) -> Response:
    settings, db, _p = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/unverified.html", {"error": exc.message}, 400)
    next_url = safe_next(field(form, "next"))
    if login.member.verified:
        return RedirectResponse(next_url, status_code=303)
    verdict = await _mail_verdict(request, login.member.email)
    if not verdict.send:
        return _unverified_refusal(request, verdict, next_url)
    await db.run(_resend, settings, login.member.id or 0, _base_url(request))
    flash(request, _(request, "Un nouveau courriel de confirmation vous a été envoyé."), "success")
    return RedirectResponse(next_url, status_code=303)


def _unverified_refusal(
    request: Request, verdict: mail_limits.Verdict, next_url: str, field_error: bool = False
) -> Response:
    """The "confirm your address" page again, saying why no mail was sent (a mail limit)."""
    if verdict.retry_after:
        message = _too_many_mails(request, verdict)
    else:
        message = _(
            request,
            "Plusieurs courriels ont déjà été envoyés à cette adresse récemment. "
            "Vérifiez vos courriels indésirables, ou réessayez dans %(delay)s.",
            delay=delays.in_words(request.app.state.settings.mail_limit_window_minutes * 60, request_locale(request)),
        )
    context = {
        "next": next_url,
        "error": None if field_error else message,
        "address_error": message if field_error else None,
    }
    return render(
        request,
        "accounts/unverified.html",
        context,
        429,
        headers=_retry_headers(verdict) if verdict.retry_after else None,
    )


async def correct_address(request: Request) -> Response:
    """An unverified member corrects a mistyped address; the verification mail goes to the new one."""
    settings, db, _p = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/unverified.html", {"error": exc.message}, 400)
    next_url = safe_next(field(form, "next"))
    if login.member.verified:
        return RedirectResponse("/account", status_code=303)
    email = field(form, "email")
    try:
        normalize_email(email)
    except AccountError as exc:
        context = {"next": next_url, "address_error": _error(request, exc)}
        return render(request, "accounts/unverified.html", context, 400)
    verdict = await _mail_verdict(request, email)
    if not verdict.send:
        return _unverified_refusal(request, verdict, next_url, field_error=True)
    member_id = login.member.id or 0
    await db.run(flows.correct_unverified_email, settings, member_id, email, _base_url(request), send_mail=True)
    flash(request, _(request, "Un nouveau courriel de confirmation a été envoyé à %(email)s.", email=email), "success")
    return RedirectResponse(next_url, status_code=303)


def _resend(db: Session, settings: Settings, member_id: int, base_url: str) -> None:
    member = db.get(Member, member_id)
    if member is not None:
        flows.send_verification(db, settings, member, base_url)


# ---------------------------------------------------------------- login and logout


async def login_page(request: Request) -> Response:
    settings, db, passwords = _deps(request)
    next_url = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        login = await load_login(request)
        if login is not None and request.query_params.get("prompt") != "login":
            return RedirectResponse(next_url, status_code=303)
        return render(request, "accounts/login.html", {"next": next_url, "email": ""})
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/login.html", {"next": next_url, "email": "", "error": exc.message}, 400)
    next_url = safe_next(field(form, "next") or request.query_params.get("next"))
    email = field(form, "email")
    context = {"next": next_url, "email": email}
    device = authenticate.Device(request.headers.get("user-agent", ""), _client_ip(request))
    password = str(form.get("password") or "")
    outcome = await authenticate.with_password(db, settings, passwords, email, password, device, next_url)
    if isinstance(outcome, authenticate.Refused):
        return _login_refused(request, context, outcome)
    if isinstance(outcome, authenticate.SecondStep):
        response = RedirectResponse("/login/second-step?next=" + quote(next_url, safe=""), status_code=303)
        mfa_routes.set_pending(response, settings, outcome.member_id)
        return response
    return signed_in(request, settings, outcome)


def _login_refused(request: Request, context: dict[str, Any], refused: authenticate.Refused) -> Response:
    """The login form again, saying why (429 with Retry-After, 503, or 401)."""
    if refused.reason == "throttled":
        delay = delays.in_words(refused.retry_after, request_locale(request))
        message = _(request, "Trop de tentatives. Réessayez dans %(delay)s.", delay=delay)
        headers = {"Retry-After": str(refused.retry_after)}
        return render(request, "accounts/login.html", {**context, "error": message}, 429, headers=headers)
    if refused.reason == "unavailable":
        return render(request, "accounts/login.html", {**context, "error": _(request, CHECK_UNAVAILABLE)}, 503)
    message = _(request, "Adresse courriel ou mot de passe incorrect.")
    return render(request, "accounts/login.html", {**context, "error": message}, 401)


CHECK_UNAVAILABLE = N_(
    "Votre mot de passe ne peut pas être vérifié pour le moment. "
    "Réessayez dans quelques minutes ou choisissez-en un nouveau."
)


async def logout(request: Request) -> Response:
    settings, db, _p = _deps(request)
    login = await load_login(request)
    if request.method == "GET":
        if login is None:
            return RedirectResponse("/login", status_code=303)
        return render(request, "accounts/logout.html", {})
    try:
        await read_form(request)
    except FormError as exc:
        return render(request, "accounts/logout.html", {"error": exc.message}, 400)
    if login is not None:
        await db.run(_end_one, login.session.id or 0, "logout")
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    request.state.locale = login.member.locale if login else None
    flash(request, _(request, "Vous êtes déconnecté de Portail et de vos outils."), "success")
    return response


def _end_one(db: Session, session_id: int, reason: str) -> None:
    row = db.get(LoginSession, session_id)
    if row is not None:
        sessions.end_sessions(db, [row], reason)


# ---------------------------------------------------------------- password recovery


async def forgot_password(request: Request) -> Response:
    settings, db, _p = _deps(request)
    if request.method == "GET":
        return render(request, "accounts/forgot.html", {"email": ""})
    try:
        form = await read_form(request)
    except FormError as exc:
        return render(request, "accounts/forgot.html", {"email": "", "error": exc.message}, 400)
    email = field(form, "email")
    try:
        normalize_email(email)
    except AccountError as exc:
        return render(request, "accounts/forgot.html", {"email": email, "error": _error(request, exc)}, 400)
    verdict = await _mail_verdict(request, email)
    if verdict.retry_after:
        context = {"email": email, "error": _too_many_mails(request, verdict)}
        return render(request, "accounts/forgot.html", context, 429, headers=_retry_headers(verdict))
    if verdict.send:  # over the address's limit: the same page, no mail
        await db.run(flows.request_reset, settings, email, _base_url(request))
    return render(request, "accounts/forgot_sent.html", {"email": email})


async def reset_password(request: Request) -> Response:
    settings, db, passwords = _deps(request)
    token = request.query_params.get("token", "")
    if request.method == "GET":
        try:
            await db.run(links.peek, settings.secret_key, "reset", token)
        except AccountError as exc:
            return await _link_refused(request, exc, _(request, "Réinitialisation"))
        return render(request, "accounts/reset.html", {"token": token})
    try:
        form = await read_form(request)
        password = str(form.get("password") or "")
        refused: dict[str, AccountError] = {}
        try:
            flows.check_password(password, settings)
        except AccountError as exc:
            refused["password"] = exc
        if password != str(form.get("password_confirm") or ""):
            refused["password_confirm"] = AccountError("Les deux mots de passe ne correspondent pas.")
        if refused:
            raise FieldErrors(refused)
        new_hash = await passwords.hash_async(password)
        await db.run(flows.reset_password, settings, token, new_hash)
    except FormError as exc:
        return render(request, "accounts/reset.html", {"token": token, "error": exc.message}, 400)
    except FieldErrors as exc:
        context = {"token": token, "field_errors": _field_errors(request, exc)}
        return render(request, "accounts/reset.html", context, 400)
    except links.LinkError as exc:  # the link stopped working while the form was open
        return await _link_refused(request, exc, _(request, "Réinitialisation"))
    except AccountError as exc:
        return render(request, "accounts/reset.html", {"token": token, "error": _error(request, exc)}, 400)
    flash(request, _(request, "Votre mot de passe a été changé. Connectez-vous avec le nouveau."), "success")
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


# ---------------------------------------------------------------- my account


async def account(request: Request) -> Response:
    settings, db, _p = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    active = await db.run(sessions.active_sessions, login.member.id or 0, settings)
    territory = await db.run(organizations.territory_of, login.member)
    pending_email = await db.run(links.pending_email_change, login.member.id or 0)
    username = await db.run(members.username_of, login.member)
    return render(
        request,
        "accounts/account.html",
        {
            "username": username,
            "pending_email": pending_email,
            "sessions": active,
            "devices": {row.sid: devices.describe(row.user_agent) for row in active},
            "current_sid": login.session.sid,
            "territory": territory,
        },
    )


async def account_profile(request: Request) -> Response:
    return await _account_form(request, "profile")


async def account_password(request: Request) -> Response:
    return await _account_form(request, "password")


async def account_email(request: Request) -> Response:
    return await _account_form(request, "email")


async def _account_form(request: Request, which: str) -> Response:
    settings, db, passwords = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    member = login.member
    if which == "email":  # a sensitive change: asks for a fresh authentication (the password form asks itself)
        stale = await security_routes.require_fresh(request, login)
        if stale is not None:
            return stale
    form = FormData()
    try:
        form = await read_form(request)
        if which == "profile":
            locale = field(form, "locale")
            await db.run(_change_profile, member.id or 0, field(form, "name"), locale)
            if locale in LOCALES:
                request.state.locale = locale  # the confirmation is shown in the new language
            flash(request, _(request, "Votre profil est enregistré."), "success")
        elif which == "password":
            current = str(form.get("current_password") or "")
            new = str(form.get("new_password") or "")
            refused: dict[str, AccountError] = {}
            if not await passwords.verify_async(member.password_hash, current):
                refused["current_password"] = AccountError("Le mot de passe actuel est incorrect.")
            try:
                flows.check_password(new, settings)
            except AccountError as exc:
                refused["new_password"] = exc
            if new != str(form.get("new_password_confirm") or ""):
                refused["new_password_confirm"] = AccountError("Les deux mots de passe ne correspondent pas.")
            if refused:
                raise FieldErrors(refused)
            new_hash = await passwords.hash_async(new)
            await db.run(_change_password, settings, member.id or 0, new_hash, login.session.id)
            flash(
                request,
                _(request, "Votre mot de passe est changé. Vos autres sessions sont fermées."),
                "success",
            )
        else:
            verdict = await _mail_verdict(request, field(form, "email"))
            if verdict.retry_after:
                raise AccountError(
                    "Trop de demandes d’envoi de courriel depuis votre connexion. Réessayez dans %(delay)s.",
                    delay=delays.in_words(verdict.retry_after, request_locale(request)),
                )
            if verdict.send:  # over the address's limit: the same confirmation, no mail
                await db.run(_change_email, settings, member.id or 0, field(form, "email"), _base_url(request))
            flash(
                request,
                _(
                    request,
                    "Un lien de confirmation a été envoyé à la nouvelle adresse. "
                    "Votre adresse actuelle reste valide d’ici là.",
                ),
                "success",
            )
    except (FormError, AccountError) as exc:
        context: dict[str, Any] = {
            "section": which,
            "values": {"name": field(form, "name"), "email": field(form, "email")},
        }
        if isinstance(exc, FormError):
            context["error"] = exc.message
        elif isinstance(exc, FieldErrors):
            context["field_errors"] = _field_errors(request, exc)
        else:  # one field per form can be refused alone: the name, or the new address
            context["field_errors"] = {"name" if which == "profile" else "email": _error(request, exc)}
        active = await db.run(sessions.active_sessions, member.id or 0, settings)
        context |= {
            "sessions": active,
            "devices": {row.sid: devices.describe(row.user_agent) for row in active},
            "current_sid": login.session.sid,
            "territory": await db.run(organizations.territory_of, member),
            "pending_email": await db.run(links.pending_email_change, member.id or 0),
            "username": await db.run(members.username_of, member),
        }
        return render(request, "accounts/account.html", context, 400)
    response = RedirectResponse("/account", status_code=303)
    if which == "profile" and request.state.locale in LOCALES:
        _set_lang_cookie(response, settings, request.state.locale)
    return response


def _change_profile(db: Session, member_id: int, name: str, locale: str) -> None:
    member = db.get(Member, member_id)
    assert member is not None
    flows.change_profile(db, member, name=name, locale=locale)


def _change_password(db: Session, settings: Settings, member_id: int, new_hash: str, session_id: int | None) -> None:
    member = db.get(Member, member_id)
    assert member is not None
    flows.change_password(db, member, new_hash, keep_session_id=session_id)
    step_up.reauthenticated(db, session_id or 0)  # the current password was just given
    factors.notify(db, settings, member, factors.PASSWORD_CHANGED)


def _change_email(db: Session, settings: Settings, member_id: int, email: str, base_url: str) -> None:
    member = db.get(Member, member_id)
    assert member is not None
    flows.request_email_change(db, settings, member, email, base_url)


async def confirm_email(request: Request) -> Response:
    settings, db, _p = _deps(request)
    try:
        await db.run(flows.confirm_email_change, settings, request.query_params.get("token", ""))
    except AccountError as exc:
        return await _link_refused(request, exc, _(request, "Changement d’adresse"))
    flash(request, _(request, "Votre nouvelle adresse courriel est confirmée."), "success")
    return RedirectResponse("/account", status_code=303)


async def end_session(request: Request) -> Response:
    """End one of my sessions (another browser or device)."""
    settings, db, _p = _deps(request)
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    try:
        await read_form(request)
    except FormError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/account", status_code=303)
    sid = request.path_params["sid"]
    ended = await db.run(_end_by_sid, login.member.id or 0, sid)
    if not ended:
        return render(
            request,
            "accounts/message.html",
            {"title": _(request, "Sessions"), "error": _(request, "Cette session n’existe pas.")},
            404,
        )
    flash(request, _(request, "La session est fermée, ainsi que les outils qui l’utilisaient."), "success")
    if sid == login.session.sid:
        response = RedirectResponse("/login", status_code=303)
        clear_session_cookie(response, settings)
        return response
    return RedirectResponse("/account", status_code=303)


def _end_by_sid(db: Session, member_id: int, sid: str) -> bool:
    row = sessions.get_by_sid(db, sid)
    if row is None or row.member_id != member_id or row.ended_at is not None:
        return False
    sessions.end_sessions(db, [row], "ended-by-member")
    return True


# ---------------------------------------------------------------- language


async def choose_language(request: Request) -> Response:
    settings, db, _p = _deps(request)
    login = await load_login(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/", status_code=303)
    locale = field(form, "locale")
    if locale not in LOCALES:
        locale = settings.default_locale
    if login is not None:
        await db.run(_set_locale, login.member.id or 0, locale)
    request.state.locale = locale
    response = RedirectResponse(safe_next(field(form, "next")), status_code=303)
    _set_lang_cookie(response, settings, locale)
    return response


def _set_lang_cookie(response: Response, settings: Settings, locale: str) -> None:
    """Remember the language in the browser too, so it survives logging out."""
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=365 * 86400,
        samesite="lax",
        secure=settings.secure_cookies,
        httponly=True,
    )


def _set_locale(db: Session, member_id: int, locale: str) -> None:
    member = db.get(Member, member_id)
    if member is not None:
        member.locale = locale
        db.add(member)


# ---------------------------------------------------------------- terms and privacy policy

TERMS = [
    N_("En commun est un environnement numérique libre et collaboratif de Projet collectif."),
    N_("Vous vous engagez à utiliser les outils dans le respect des autres membres et de la loi."),
]
PRIVACY = [
    N_("Portail conserve votre nom, votre adresse courriel, votre mot de passe haché et vos sessions."),
    N_(
        "Chaque outil ne reçoit que les renseignements auxquels vous avez consenti; vous pouvez retirer ce "
        "consentement, exporter vos données ou supprimer votre compte en tout temps (Loi 25)."
    ),
]


async def terms(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    return render(
        request,
        "legal.html",
        {
            "title": _(request, "Conditions d’utilisation"),
            "version": settings.terms_version,
            "paragraphs": [_(request, p) for p in TERMS],
        },
    )


async def privacy(request: Request) -> Response:
    settings, db, _p = _deps(request)
    version = await db.run(policy.current_version, settings)  # the latest published (consent package)
    return render(
        request,
        "legal.html",
        {
            "title": _(request, "Politique de confidentialité"),
            "version": version,
            "paragraphs": [_(request, p) for p in PRIVACY],
        },
    )


async def common_passwords(request: Request) -> Response:
    """The common-password list the server refuses, for the strength hint of new-password fields (portail.js)."""
    body = await run_in_threadpool(COMMON_PASSWORDS.read_bytes)
    headers = {"Content-Encoding": "gzip", "Cache-Control": "public, max-age=86400"}
    return Response(body, media_type="text/plain; charset=utf-8", headers=headers)


routes = [
    Route("/terms", terms, methods=["GET"], name="terms"),
    Route("/privacy", privacy, methods=["GET"], name="privacy"),
    Route("/signup", signup, methods=["GET", "POST"], name="signup"),
    Route("/verify", verify, methods=["GET"], name="verify"),
    Route("/verify/resend", resend_verification, methods=["POST"], name="verify_resend"),
    Route("/verify/address", correct_address, methods=["POST"], name="verify_address"),
    Route("/login", login_page, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["GET", "POST"], name="logout"),
    Route("/password/common.txt", common_passwords, methods=["GET"], name="password_common"),
    Route("/password/forgot", forgot_password, methods=["GET", "POST"], name="password_forgot"),
    Route("/password/reset", reset_password, methods=["GET", "POST"], name="password_reset"),
    Route("/account", account, methods=["GET"], name="account"),
    Route("/account/profile", account_profile, methods=["POST"], name="account_profile"),
    Route("/account/password", account_password, methods=["POST"], name="account_password"),
    Route("/account/email", account_email, methods=["POST"], name="account_email"),
    Route("/account/email/confirm", confirm_email, methods=["GET"], name="account_email_confirm"),
    Route("/account/sessions/{sid}/end", end_session, methods=["POST"], name="account_session_end"),
    Route("/language", choose_language, methods=["POST"], name="language"),
]
