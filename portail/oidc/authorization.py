"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2) and its pages: resume after
login, the consent page, and the ``form_post`` response mode (OAuth 2.0 Form Post Response Mode).

Each handler parses, makes one domain call (``interaction``) and renders the outcome: a redirect
to the client (RFC 6749 §4.1.2, with ``iss`` per RFC 9207), an auto-submitted form for
``response_mode=form_post`` (its page's CSP allows ``form-action`` to the client's origin only),
a Portail page (login, consent, confirm your email), or an error page in the member's language.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portail.accounts.current import Login, load_login, login_pending, remember_login, resolve_login
from portail.config import Settings
from portail.db import Database
from portail.oidc import consent_notes, interaction
from portail.oidc.authorization_request import AskVerification, GoTo, Outcome, ShowError, ToClient
from portail.oidc.server import InputError, read_input
from portail.web import N_, FormError, _, error_page, field, read_form, render, request_locale, security_headers

SCOPE_TEXT = {
    "openid": N_("Vous reconnaître quand vous revenez (un identifiant qui ne révèle rien d’autre sur vous)"),
    "profile": N_("Votre nom, votre nom d’utilisateur et votre langue"),
    "email": N_("Votre adresse courriel et le fait qu’elle est confirmée"),
    "groups": N_("Les organisations dont vous êtes membre"),
    "offline_access": N_("Rester connecté à cet outil même après votre déconnexion de Portail"),
}
CLAIM_TEXT = {
    "name": N_("Votre nom"),
    "preferred_username": N_("Votre nom d’utilisateur"),
    "locale": N_("Votre langue"),
    "email": N_("Votre adresse courriel"),
    "email_verified": N_("Le fait que votre adresse courriel est confirmée"),
    "groups": N_("Les organisations dont vous êtes membre"),
}


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def render_outcome(request: Request, outcome: Outcome) -> Response:
    if isinstance(outcome, ShowError):
        return error_page(request, outcome.status, _(request, outcome.message))
    if isinstance(outcome, GoTo):
        return RedirectResponse(outcome.url, status_code=303)
    if isinstance(outcome, AskVerification):
        return render(request, "oidc/verify.html", {"resume_url": outcome.resume_url}, status_code=403)
    return _to_client(request, outcome)


def _to_client(request: Request, outcome: ToClient) -> Response:
    if outcome.response_mode == "form_post":
        parts = urlsplit(outcome.redirect_uri)
        base = security_headers(False)["Content-Security-Policy"]
        request.state.csp = f"{base}; form-action 'self' {parts.scheme}://{parts.netloc}"
        return render(
            request,
            "oidc/form_post.html",
            {"action": outcome.redirect_uri, "params": outcome.params},
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
    separator = "&" if urlsplit(outcome.redirect_uri).query else "?"
    location = outcome.redirect_uri + separator + urlencode(outcome.params)
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


async def authorize(request: Request) -> Response:
    try:
        inp = await read_input(request)
    except InputError:
        await load_login(request)  # the error page speaks the member's language
        return error_page(request, 400, _(request, "La demande de connexion est trop volumineuse ou illisible."))
    settings = request.app.state.settings
    # A few hundred microseconds of database work, nothing slow inside (``Database.run_short``).
    # The session cookie is resolved in the same unit of work (``SessionLoader`` defers it here):
    # one unit of work per login to a tool instead of two.
    token = login_pending(request)
    if token is None:
        outcome = await _db(request).run_short(interaction.start, settings, inp.params, await load_login(request))
    else:
        login, outcome = await _db(request).run_short(_start_signed_in, settings, inp.params, token)
        remember_login(request, login)
    return render_outcome(request, outcome)


def _start_signed_in(
    db: Session, settings: Settings, pairs: tuple[tuple[str, str], ...], token: str
) -> tuple[Login | None, Outcome]:
    login = resolve_login(db, token, settings)
    return login, interaction.start(db, settings, pairs, login)


async def resume(request: Request) -> Response:
    login = await load_login(request)
    parked_id = request.path_params["parked_id"]
    outcome = await _db(request).run(interaction.resume, request.app.state.settings, parked_id, login)
    return render_outcome(request, outcome)


def _consent_page(
    request: Request, view: interaction.ConsentView, login: Login, notes: list[str], status: int = 200
) -> Response:
    req = view.req
    api_scopes = request.app.state.oidc.api_scopes  # the application's ProviderExtensions
    scope_lines = [SCOPE_TEXT.get(s) or api_scopes.get(s, s) for s in req.scopes]
    extra_claims = [CLAIM_TEXT[c] for c in req.requested_claims if CLAIM_TEXT[c] not in scope_lines]
    return render(
        request,
        "oidc/consent.html",
        {
            "client": req.client,
            "client_host": urlsplit(req.redirect_uri).netloc,
            "scope_lines": scope_lines,
            "claim_lines": extra_claims,
            "new_scopes": bool(view.previous_scopes),
            "pairwise": req.client.subject_type == "pairwise",
            "action": interaction.consent_path(view.parked_id),
            "policy_version": view.policy_version,
            "notes": notes,  # consent_notes: e.g. where the tool stores the member's data
        },
        status_code=status,
    )


async def consent(request: Request) -> Response:
    settings = request.app.state.settings
    login = await load_login(request)
    parked_id = request.path_params["parked_id"]
    if request.method == "GET":
        found = await _db(request).run(interaction.consent_view, settings, parked_id, login)
    else:
        try:
            form = await read_form(request)
        except FormError as exc:
            return error_page(request, 400, exc.message)
        decision = field(form, "decision")
        if decision not in ("allow", "deny"):
            return error_page(request, 400, _(request, "Choisissez d’autoriser ou de refuser."))
        found = await _db(request).run(interaction.answer_consent, settings, parked_id, login, decision == "allow")
    if isinstance(found, interaction.ConsentView):
        assert login is not None
        notes = await _db(request).run(consent_notes.notes_for, found.req.client, request_locale(request))
        return _consent_page(request, found, login, notes)
    return render_outcome(request, found)
