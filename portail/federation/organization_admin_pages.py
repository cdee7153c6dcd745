"""Federation administrators' pages for organizations and territories (route handlers): the list
with a creation form, and each one's edit form (``organizations.py`` does the work)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portail.accounts.models import Member, Organization
from portail.accounts.regions import REGIONS
from portail.federation import organizations
from portail.federation.organizations import KINDS, OrganizationForm
from portail.federation.pages import deps, failure, form_or_error, members_only, message
from portail.federation.rules import Actor, FederationError, by_slug, require_federation_admin
from portail.web import _, field, flash, render

FIELDS = ("name", "kind", "region", "locality", "website", "contact_email", "description", "description_en")


def _listing(db: Any, actor: Actor) -> list[Any]:
    require_federation_admin(actor)
    return organizations.list_all(db)


def _form(form: Any) -> tuple[dict[str, str], OrganizationForm]:
    values = {k: field(form, k) for k in ("slug", *FIELDS)}
    return values, OrganizationForm(**{k: values[k] for k in FIELDS})


@members_only
async def organizations_page(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    try:
        rows = await db.run(_listing, actor)
    except FederationError as exc:
        return failure(request, exc)
    context: dict[str, Any] = {"organizations": rows, "regions": REGIONS, "kinds": KINDS, "values": {}}
    if request.method == "GET":
        return render(request, "federation/organizations.html", context)
    form, error = await form_or_error(request)
    if error:
        return error
    values, wanted = _form(form)
    try:
        created = await db.run(organizations.create, actor, values["slug"], wanted)
    except FederationError as exc:
        page = {**context, "values": values, "error": message(request, exc)}
        return render(request, "federation/organizations.html", page, exc.status)
    flash(request, _(request, "Organisation ou territoire créé."), "success")
    return RedirectResponse(f"/federation/admin/organizations/{created.slug}", status_code=303)


def _one(db: Any, actor: Actor, slug: str) -> Any:
    require_federation_admin(actor)
    return by_slug(db, Organization, slug)


@members_only
async def organization_edit(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    slug = request.path_params["slug"]
    try:
        found = await db.run(_one, actor, slug)
    except FederationError as exc:
        return failure(request, exc)
    context: dict[str, Any] = {"organization": found, "regions": REGIONS, "kinds": KINDS}
    if request.method == "GET":
        values = {k: getattr(found, k) or "" for k in FIELDS}
        return render(request, "federation/organization_edit.html", {**context, "values": values})
    form, error = await form_or_error(request)
    if error:
        return error
    values, wanted = _form(form)
    try:
        await db.run(organizations.edit, actor, slug, wanted)
    except FederationError as exc:
        page = {**context, "values": values, "error": message(request, exc)}
        return render(request, "federation/organization_edit.html", page, exc.status)
    flash(request, _(request, "Organisation ou territoire modifié."), "success")
    return RedirectResponse(f"/federation/admin/organizations/{slug}", status_code=303)
