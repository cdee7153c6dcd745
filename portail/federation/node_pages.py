"""Node lifecycle pages (route handlers): editing a node — its name, description, one-click login
URL, the ids its software gives Portail, push, URIs and contact — with the configuration shown again
on the node's page; transfer to another hoster (offer, answer); domain move (request, verify and
switch, cancel); checking the proof of control now, by HTTP or DNS (``proof_recheck``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portail.accounts.models import Member
from portail.federation import acceptance, lifecycle, overview, proof_recheck, relocation
from portail.federation.hoster_pages import SOFTWARE_NAMES, refused_on_node
from portail.federation.lifecycle import NodeEdit
from portail.federation.models import Instance
from portail.federation.pages import (
    Done,
    deps,
    failure,
    form_action,
    form_or_error,
    local_next,
    members_only,
    message,
)
from portail.federation.rules import Actor, FederationError
from portail.web import N_, _, field, flash, render

FACTS = lifecycle.FACTS
EDIT_FIELDS = (*lifecycle.EDITABLE_FIELDS, *FACTS)


DECLARED_FIELDS = ("description_en", "purposes", "purposes_en", "data_categories", "data_categories_en")


def _lines(values: dict[str, str], name: str) -> list[str] | None:
    return values[name].splitlines() if name in values else None


def current_values(instance: Instance) -> dict[str, str]:
    """The edit form filled with what the node has now."""
    return {
        "version": instance.updated_at.isoformat(),
        "name": instance.name,
        "description": instance.description,
        "description_en": instance.description_en,
        "purposes": "\n".join(instance.purposes),
        "purposes_en": "\n".join(instance.purposes_en),
        "data_categories": "\n".join(instance.data_categories),
        "data_categories_en": "\n".join(instance.data_categories_en),
        "login_url": instance.login_url or "",
        "provider_identifier": instance.provider_identifier,
        "nextcloud_provider_id": str(instance.extra.get("user_oidc_provider_id") or ""),
        "push_notifications": "true" if instance.push_notifications else "false",
        "redirect_uris": "\n".join(instance.redirect_uris),
        "post_logout_redirect_uris": "\n".join(instance.post_logout_redirect_uris),
        "backchannel_logout_uri": instance.backchannel_logout_uri or "",
        "contact_email": instance.contact_email,
        "members_only": "true" if instance.members_only else "",
        "jwks_uri": str(instance.extra.get("jwks_uri") or ""),
        **{name: str(getattr(instance, name)) for name in FACTS},
    }


def edit_from_form(values: dict[str, str]) -> NodeEdit:
    return NodeEdit(
        version=values["version"] or None,
        name=values["name"],
        description=values["description"],
        description_en=values.get("description_en"),
        purposes=_lines(values, "purposes"),
        purposes_en=_lines(values, "purposes_en"),
        data_categories=_lines(values, "data_categories"),
        data_categories_en=_lines(values, "data_categories_en"),
        login_url=values["login_url"],
        provider_identifier=values["provider_identifier"],
        nextcloud_provider_id=values["nextcloud_provider_id"],
        push_notifications=values["push_notifications"],
        redirect_uris=values["redirect_uris"].split(),
        post_logout_redirect_uris=values["post_logout_redirect_uris"].split(),
        backchannel_logout_uri=values["backchannel_logout_uri"],
        contact_email=values["contact_email"],
        members_only=values["members_only"] == "true",
        jwks_uri=values["jwks_uri"],
        facts={name: values[name] for name in FACTS if name in values},
    )


@members_only
async def edit_node(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]
    try:
        context: dict[str, Any] = await db.run(overview.instance_page, actor, slug)
    except FederationError as exc:
        return failure(request, exc)
    context["software_names"] = SOFTWARE_NAMES
    if request.method == "GET":
        return render(request, "federation/node_edit.html", {**context, "values": current_values(context["instance"])})
    form, error = await form_or_error(request)
    if error:
        return error
    # A form from before the bilingual fields (or a script) that lacks them leaves them as they are.
    # (fields declared elsewhere -- the bilingual ones, the CHATONS facts -- are left as they are when absent)
    values = {
        k: field(form, k)
        for k in ("version", *EDIT_FIELDS)
        if k in form or (k not in DECLARED_FIELDS and k not in FACTS)
    }
    try:
        _instance, changed = await db.run(lifecycle.edit, settings, actor, slug, edit_from_form(values))
    except FederationError as exc:
        page = {**context, "values": values, "error": message(request, exc)}
        return render(request, "federation/node_edit.html", page, exc.status)
    if changed:
        flash(request, _(request, "Nœud modifié; sa configuration est à jour ci-dessous."), "success")
    else:
        flash(request, _(request, "Rien n’a changé."), "success")
    return RedirectResponse(f"/federation/instances/{slug}", status_code=303)


@members_only
async def offer_transfer(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def offer(form: Any) -> Done:
        await db.run(relocation.offer_transfer, settings, actor, slug, field(form, "hoster"))
        return Done(
            N_("Transfert proposé; l’autre hébergeur est prévenu par courriel."), f"/federation/instances/{slug}"
        )

    return await form_action(request, offer, refused_on_node(request, actor))


@members_only
async def answer_transfer(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def answer(form: Any) -> Done:
        accept = field(form, "decision") == "accept"
        await db.run(relocation.answer_transfer, settings, actor, slug, accept=accept)
        text = N_("Le nœud est maintenant à vous.") if accept else N_("Le transfert est annulé.")
        return Done(text, local_next(form, f"/federation/instances/{slug}"))

    return await form_action(request, answer)


@members_only
async def request_move(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def move(form: Any) -> Done:
        await relocation.request_move(db, settings, actor, slug, field(form, "base_url"))
        return Done(N_("Servez maintenant le jeton à la nouvelle adresse."), f"/federation/instances/{slug}")

    return await form_action(request, move, refused_on_node(request, actor))


@members_only
async def verify_move(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def verify(form: Any) -> Done:
        await relocation.verify_move(db, settings, actor, slug, field(form, "method") or "http")
        return Done(N_("Nouvelle adresse vérifiée : le nœud y a basculé."), f"/federation/instances/{slug}")

    return await form_action(request, verify, refused_on_node(request, actor))


@members_only
async def cancel_move(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    slug = request.path_params["slug"]

    async def cancel(_form: Any) -> Done:
        await db.run(relocation.cancel_move, actor, slug)
        return Done(N_("Changement de domaine annulé."), f"/federation/instances/{slug}")

    return await form_action(request, cancel, refused_on_node(request, actor))


@members_only
async def organization_decision(request: Request, member: Member, actor: Actor) -> Response:
    """The served organization's administrators accept, refuse or withdraw a node."""
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def decide(form: Any) -> Done:
        decision = field(form, "decision")
        await db.run(acceptance.decide, settings, actor, slug, decision, field(form, "reason"))
        texts = {
            "accept": N_("Nœud accepté : il apparaît maintenant à vos membres."),
            "refuse": N_("Nœud refusé; son hébergeur est prévenu."),
        }
        text = texts.get(decision, N_("Acceptation retirée : le nœud ne dessert plus vos membres."))
        return Done(text, local_next(form, f"/federation/instances/{slug}"))

    return await form_action(request, decide)


@members_only
async def check_proof(request: Request, member: Member, actor: Actor) -> Response:
    """Check the node's proof of control now, by the method chosen (a passing check switches to it)."""
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def check(form: Any) -> Done:
        await proof_recheck.check_now(db, settings, actor, slug, field(form, "method") or None)
        return Done(N_("Preuve de contrôle vérifiée."), f"/federation/instances/{slug}")

    return await form_action(request, check, refused_on_node(request, actor))
