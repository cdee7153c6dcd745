"""Pages (route handlers) for the CHATONS data and Law 25 residency: a hoster's administrators save
their organization's data from the hoster's page; a federation administrator records a node's privacy
impact assessment (EFVP) from the node's page, which lets a node whose data leave Québec be approved."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from portail.accounts.models import Member
from portail.federation import chatons, directory, residency
from portail.federation.hoster_pages import refused_on_node
from portail.federation.pages import Done, deps, form_action, members_only
from portail.federation.rules import Actor
from portail.web import N_, TEMPLATES_ENV, field, translate


def facts_choices(locale: str) -> dict[str, Any]:
    """The options of the node form's residency and CHATONS selects, in the page's language."""

    def options(labels: dict[str, str]) -> list[tuple[str, str]]:
        return [(code, translate(locale, text)) for code, text in labels.items()]

    babel = "en" if locale == "en" else "fr_CA"
    provinces = [(code, residency.place_name(code, locale)) for code in residency.PROVINCES]
    abroad = [(code, name) for code, name in residency.countries(babel).items() if code != "CA"]
    return {
        "places": [*provinces, ("CA", residency.countries(babel).get("CA", "Canada")), *abroad],
        "provider_types": options(residency.PROVIDER_TYPES),
        "server_types": options(residency.SERVER_TYPES),
        "registrations": options(chatons.REGISTRATIONS),
        "install_types": options(chatons.INSTALL_TYPES),
        "organization_types": options(chatons.ORGANIZATION_TYPES),
        "needs_software": {software: not info[2] for software, info in directory.SOFTWARE_INFO.items()},
    }


TEMPLATES_ENV.globals["facts_choices"] = facts_choices
TEMPLATES_ENV.globals["place_name"] = residency.place_name
TEMPLATES_ENV.globals["residency_provider_types"] = residency.PROVIDER_TYPES
TEMPLATES_ENV.globals["residency_of"] = residency.of
TEMPLATES_ENV.globals["fact_label"] = lambda key: chatons.LABELS.get(key, key)


@members_only
async def hoster_organization(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    slug = request.path_params["slug"]

    async def save(form: Any) -> Done:
        values = {name: field(form, name) for name in chatons.ORGANIZATION_FIELDS}
        _hoster, changed = await db.run(chatons.edit_organization, actor, slug, values)
        text = N_("Données de l’organisation enregistrées.") if changed else N_("Rien n’a changé.")
        return Done(text, f"/federation/hosters/{slug}#chatons")

    return await form_action(request, save)


@members_only
async def record_pia(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def record(form: Any) -> Done:
        await db.run(residency.record_pia, settings, actor, slug, field(form, "note"))
        text = N_("Évaluation des facteurs relatifs à la vie privée enregistrée : le nœud peut être approuvé.")
        return Done(text, f"/federation/instances/{slug}")

    return await form_action(request, record, refused_on_node(request, actor))
