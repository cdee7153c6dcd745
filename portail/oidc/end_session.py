"""The end-session endpoint: OpenID Connect RP-Initiated Logout 1.0 §2 (GET and POST).

Parse the parameters, validate them (``logout_request``), then either end the session at once (a
valid ``id_token_hint`` names this browser's session) or show a confirmation form (CSRF, works
without JavaScript). Ending the session triggers the back-channel logout of every tool of the
session (``backchannel``, through ``AccountExtensions.on_session_end``); the member is then redirected to
the validated ``post_logout_redirect_uri`` (with ``state``) or to Portail's login page with a
"you are logged out" message. Invalid requests get an error page, never a redirect (§4).
The endpoint URL carries no query string: Nextcloud appends ``?post_logout_redirect_uri=…``.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portail.accounts import sessions
from portail.accounts.current import clear_session_cookie, load_login
from portail.accounts.models import LoginSession
from portail.config import Settings
from portail.oidc import logout_request
from portail.oidc.logout_request import LogoutRequest, LogoutRequestError
from portail.web import FormError, _, error_page, flash, read_form, render


def _end(db: Session, session_id: int) -> None:
    row = db.get(LoginSession, session_id)
    if row is not None:
        sessions.end_sessions(db, [row], "rp-logout")


def _done(request: Request, settings: Settings, validated: LogoutRequest | None, ended: bool) -> Response:
    if validated is not None and validated.redirect_uri:
        response: Response = RedirectResponse(validated.redirect_uri, status_code=303)
    else:
        if ended:
            flash(request, _(request, "Vous êtes déconnecté de Portail et de vos outils."), "success")
        response = RedirectResponse("/login", status_code=303)
    if ended:
        clear_session_cookie(response, settings)
    return response


async def end_session(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    confirming = False
    if request.method == "POST":
        try:
            form = await read_form(request, check_csrf=False)
        except FormError as exc:
            return error_page(request, 400, exc.message)
        confirming = form.get("decision") == "logout"
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    else:
        pairs = list(request.query_params.multi_items())
    chosen = logout_request.pick_ui_locale(next((v for k, v in pairs if k == "ui_locales"), None))
    if chosen and getattr(request.state, "member", None) is None:
        request.state.locale = chosen  # §2 ui_locales: the member's own choice still wins
    try:
        params = logout_request.single_values(pairs)
        validated = await db.run(logout_request.validate, settings, params)
    except LogoutRequestError as exc:
        message = _(request, "Cette demande de déconnexion est invalide.")
        return error_page(request, 400, f"{message} ({exc.description})")
    login = await load_login(request)
    if login is None:
        return _done(request, settings, validated, ended=False)
    if confirming:
        try:
            await read_form(request)
        except FormError as exc:
            return _confirm(request, validated, exc.message, 400)
    elif not validated.confirmed_by_hint(login.session.sid):
        return _confirm(request, validated)
    await db.run(_end, login.session.id or 0)
    return _done(request, settings, validated, ended=True)


def _confirm(request: Request, validated: LogoutRequest, error: str | None = None, status: int = 200) -> Response:
    return render(
        request,
        "oidc/end_session.html",
        {
            "action": request.url_for("end_session").path,
            "hidden": validated.params,
            "client_name": validated.client_name,
            "error": error,
        },
        status,
    )
