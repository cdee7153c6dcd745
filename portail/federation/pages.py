"""Federation pages for members (route handlers): the federation home, the federation
administrators' desk, organization and territory pages (links, hosting requests) and personal API
tokens (``/account/api-tokens``). The hoster's and node's pages are in ``hoster_pages.py``.

Each handler parses, makes one domain call through ``db.run`` and renders; a refusal re-renders the
page with a translated message and its 4xx status. A form that changes something (``POST``) goes
through ``form_action``: readable form or 400 page, the domain call, then a flash and a redirect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portail.accounts.current import load_login, login_redirect, unverified_page
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.federation import audience, availability, credentials, hosters, overview
from portail.federation.rules import Actor, FederationError
from portail.web import N_, TEMPLATES_ENV, FormError, _, field, flash, labels, read_form, render

TEMPLATES_ENV.globals["availability"] = availability.state  # federation/_labels.html: health(instance)
TEMPLATES_ENV.globals["probe_problem"] = labels.probe_problem  # a probe's raw error, summarized
TEMPLATES_ENV.globals["audit_action"] = labels.audit_action  # a decision log's action, in words

Page = Callable[[Request, Member, Actor], Awaitable[Response]]


@dataclass(frozen=True)
class Done:
    """What a successful form action says (``message``, a French source marked ``N_``) and where it goes."""

    message: str
    to: str


def deps(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def message(request: Request, exc: FederationError) -> str:
    return _(request, exc.message, **exc.params)


def members_only(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Log in first (and have a verified address); then call ``handler(request, member, actor)``."""

    async def wrapped(request: Request) -> Response:
        login = await load_login(request)
        if login is None:
            return login_redirect(request)
        if not login.member.verified:
            return unverified_page(request)
        return await handler(request, login.member, Actor.for_member(login.member, client_ip(request)))

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def failure(request: Request, exc: FederationError) -> Response:
    return render(request, "error.html", {"status_code": exc.status, "message": message(request, exc)}, exc.status)


def _readable(value: object) -> bool:
    """Text without NUL or other control characters (line breaks and tabs allowed)."""
    return not isinstance(value, str) or not any(ord(c) < 32 and c not in "\r\n\t" for c in value)


async def form_or_error(request: Request) -> tuple[Any, Response | None]:
    try:
        form = await read_form(request)
    except FormError as exc:
        return None, render(request, "error.html", {"status_code": 400, "message": exc.message}, 400)
    if not all(_readable(v) for _k, v in form.multi_items()):
        text = _(request, "Le formulaire envoyé est illisible.")
        return None, render(request, "error.html", {"status_code": 400, "message": text}, 400)
    return form, None


async def form_action(
    request: Request,
    action: Callable[[Any], Awaitable[Done]],
    refused: Callable[[FederationError], Awaitable[Response]] | None = None,
) -> Response:
    """The shape of every form ``POST`` of these pages: read the form (an unreadable one gets the 400
    page), run ``action(form)`` (the domain call), then flash its message and redirect (303). A
    ``FederationError`` shows ``refused(exc)``, by default the error page with its status."""
    form, error = await form_or_error(request)
    if error:
        return error
    try:
        done = await action(form)
    except FederationError as exc:
        return await refused(exc) if refused is not None else failure(request, exc)
    flash(request, _(request, done.message), "success")
    return RedirectResponse(done.to, status_code=303)


def local_next(form: Any, default: str) -> str:
    """The form's ``next`` when it is a federation page, else ``default`` (never an open redirect)."""
    back = field(form, "next")
    return back if back.startswith("/federation/") else default


# ---------------------------------------------------------------- home and administration


@members_only
async def home(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    data = await db.run(overview.home, actor, member.id or 0)
    return render(request, "federation/home.html", data)


@members_only
async def admin(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    try:
        data = await db.run(overview.admin_page, actor)
    except FederationError as exc:
        return failure(request, exc)
    return render(request, "federation/admin.html", data)


@members_only
async def admin_hoster_decision(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def decide(form: Any) -> Done:
        approve = field(form, "decision") == "approve"
        await db.run(hosters.decide, settings, actor, slug, approve=approve, reason=field(form, "reason"))
        text = N_("L’hébergeur est accepté.") if approve else N_("La demande est refusée; la raison a été envoyée.")
        return Done(text, "/federation/admin")

    return await form_action(request, decide)


# ---------------------------------------------------------------- organizations and territories


@members_only
async def organization(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    try:
        data = await db.run(overview.organization_page, actor, request.path_params["slug"])
    except FederationError as exc:
        return failure(request, exc)
    return render(request, "federation/organization.html", data)


@members_only
async def organization_link(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def ask(form: Any) -> Done:
        await db.run(audience.request_link, settings, actor, slug, field(form, "instance"))
        text = N_("Demande envoyée à l’hébergeur de l’instance, qui doit la confirmer.")
        return Done(text, f"/federation/organizations/{slug}")

    return await form_action(request, ask)


@members_only
async def organization_hosting(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def ask(form: Any) -> Done:
        wanted = (field(form, "hoster"), field(form, "software"), field(form, "message"))
        await db.run(audience.ask_hosting, settings, actor, slug, *wanted)
        text = N_("Votre demande d’hébergement a été transmise à l’hébergeur.")
        return Done(text, f"/federation/organizations/{slug}")

    return await form_action(request, ask)


@members_only
async def link_remove(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)

    async def remove(form: Any) -> Done:
        await db.run(audience.remove_link, actor, int(request.path_params["link_id"]))
        return Done(N_("Le lien est retiré."), local_next(form, "/federation"))

    return await form_action(request, remove)


# ---------------------------------------------------------------- personal API tokens


def _token_page(db_session: Any, member_id: int) -> list[Any]:
    return credentials.list_tokens(db_session, member_id)


@members_only
async def api_tokens(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    context: dict[str, Any] = {
        "scopes": credentials.SCOPES,
        "max_days": settings.api_token_max_days,
        "is_federation_admin": actor.federation_admin,
    }
    status = 200
    if request.method == "POST":
        form, error = await form_or_error(request)
        if error:
            return error
        try:
            days = int(field(form, "days") or "90")
        except ValueError:
            days = 0
        try:
            token, raw = await db.run(
                credentials.create_token, settings, member, field(form, "name"), form.getlist("scopes"), days
            )
            context["created"] = {"token": token, "raw": raw}
        except FederationError as exc:
            context["error"], status = message(request, exc), exc.status
    context["tokens"] = await db.run(_token_page, member.id or 0)
    headers = {"Cache-Control": "no-store"} if "created" in context else None
    return render(request, "federation/api_tokens.html", context, status, headers=headers)


@members_only
async def api_token_revoke(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)

    async def revoke(_form: Any) -> Done:
        await db.run(credentials.revoke_token, member.id or 0, int(request.path_params["token_id"]))
        return Done(N_("Le jeton est révoqué."), "/account/api-tokens")

    return await form_action(request, revoke)
