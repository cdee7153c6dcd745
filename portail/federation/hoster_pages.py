"""Hoster pages (route handlers): the application with charter acceptance, the hoster's page (its
people, nodes and API client), node registration, and the node's page with its steps — the
challenge to serve, "verify", awaiting approval, the secret and configuration shown once, secret
rotation, decisions (approve, refuse, suspend, reactivate, retire) and link confirmations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portail.accounts.models import Member
from portail.accounts.regions import REGIONS
from portail.db import row_id, utcnow
from portail.federation import audience, chatons, governance, hosters, nodes, overview, provisioning, snippets
from portail.federation.hosters import Application
from portail.federation.models import SOFTWARE
from portail.federation.nodes import NodeForm
from portail.federation.pages import Done, deps, failure, form_action, form_or_error, local_next, members_only, message
from portail.federation.rules import Actor, FederationError
from portail.web import N_, _, field, flash, render

SOFTWARE_NAMES = {
    "nextcloud": "Nextcloud",
    "matrix": N_("Matrix (Synapse)"),
    "passerelles": "Passerelles",
    "praxis": "Praxis",
    "discourse": "Discourse",
    "other": N_("Autre logiciel"),
}


@members_only
async def apply(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    values: dict[str, Any] = {"name": "", "website": "", "contact_email": member.email, "description": "", "region": ""}
    context: dict[str, Any] = {
        "values": values,
        "regions": REGIONS,
        "charter_version": settings.federation_charter_version,
    }
    if request.method == "GET":
        return render(request, "federation/apply.html", context)
    form, error = await form_or_error(request)
    if error:
        return error
    values.update({k: field(form, k) for k in values})
    application = Application(**values, accept_charter=form.get("accept_charter") == "on")
    try:
        hoster = await db.run(hosters.apply, settings, actor, application)
    except FederationError as exc:
        return render(request, "federation/apply.html", {**context, "error": message(request, exc)}, exc.status)
    flash(request, _(request, "Votre demande est enregistrée. La fédération vous répondra par courriel."), "success")
    return RedirectResponse(f"/federation/hosters/{hoster.slug}", status_code=303)


@members_only
async def hoster_page(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    try:
        data = await db.run(overview.hoster_page, actor, request.path_params["slug"])
    except FederationError as exc:
        return failure(request, exc)
    context = {**data, "software_names": SOFTWARE_NAMES, "charter_version": _s.federation_charter_version}
    context["publication"] = await db.run(chatons.publication_of, _s, request.path_params["slug"])  # CHATONS
    return render(request, "federation/hoster.html", context)


@members_only
async def hoster_people(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)
    slug = request.path_params["slug"]

    async def change(form: Any) -> Done:
        if field(form, "remove"):
            person_id = row_id(field(form, "remove"))
            if person_id is None:
                raise FederationError("La demande est invalide.")
            await db.run(hosters.remove_person, actor, slug, person_id)
        else:
            await db.run(hosters.add_person, actor, slug, field(form, "email"), field(form, "role"))
        return Done(N_("Les personnes de l’hébergeur sont à jour."), f"/federation/hosters/{slug}")

    return await form_action(request, change)


@members_only
async def hoster_api_client(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    _form, error = await form_or_error(request)
    if error:
        return error
    slug = request.path_params["slug"]
    try:
        client_id, secret = await db.run(hosters.issue_api_client, actor, slug)
    except FederationError as exc:
        return failure(request, exc)
    context = {"slug": slug, "client_id": client_id, "secret": secret, "token_url": f"{settings.issuer}/token"}
    return render(request, "federation/api_client.html", context, headers={"Cache-Control": "no-store"})


@members_only
async def register_node(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]
    try:
        context: dict[str, Any] = await db.run(overview.node_form, actor, slug)
    except FederationError as exc:
        return failure(request, exc)
    context.update(
        software=SOFTWARE,
        software_names=SOFTWARE_NAMES,
        values={"provider_identifier": "encommun", "scope": "organization"},
    )
    if request.method == "GET":
        return render(request, "federation/node_form.html", context)
    form, error = await form_or_error(request)
    if error:
        return error
    values = {
        k: field(form, k)
        for k in (
            "software",
            "name",
            "base_url",
            "scope",
            "organization",
            "territory",
            "provider_identifier",
            "redirect_uris",
            "post_logout_redirect_uris",
            "backchannel_logout_uri",
            "push_notifications",
            "jwks_uri",
        )
    }
    context["values"] = values
    node = NodeForm(
        software=values["software"],
        name=values["name"],
        base_url=values["base_url"],
        scope=values["scope"],
        organization=values["territory"] if values["scope"] == "territorial" else values["organization"],
        provider_identifier=values["provider_identifier"] or "encommun",
        redirect_uris=values["redirect_uris"].split(),
        post_logout_redirect_uris=values["post_logout_redirect_uris"].split(),
        backchannel_logout_uri=values["backchannel_logout_uri"],
        push_notifications=values["push_notifications"],
        jwks_uri=values["jwks_uri"],
    )
    try:
        instance = await nodes.register(db, settings, actor, slug, node)
    except FederationError as exc:
        return render(request, "federation/node_form.html", {**context, "error": message(request, exc)}, exc.status)
    flash(request, _(request, "Nœud inscrit. Servez maintenant le jeton de vérification."), "success")
    return RedirectResponse(f"/federation/instances/{instance.slug}", status_code=303)


async def _instance(request: Request, actor: Actor, error: str = "", status: int = 200) -> Response:
    settings, db = deps(request)
    try:
        data = await db.run(overview.instance_page, actor, request.path_params["slug"])
    except FederationError as exc:
        return failure(request, exc)
    instance = data["instance"]
    shown = instance.status == "active" and instance.client_id and not data["view"]["secret_pending"]
    groups = data["restriction_groups"]
    configuration = snippets.for_instance(settings.issuer, instance, instance.client_id, None, groups) if shown else []
    context = {
        **data,
        "software_names": SOFTWARE_NAMES,
        "error": error,
        "snippets": configuration,
        "grace_hours": settings.secret_rotation_grace_hours,
        "now": utcnow(),
    }
    return render(request, "federation/instance.html", context, status)


@members_only
async def instance_page(request: Request, member: Member, actor: Actor) -> Response:
    return await _instance(request, actor)


def refused_on_node(request: Request, actor: Actor) -> Callable[[FederationError], Awaitable[Response]]:
    """A refused action on a node re-renders the node's page with the reason and its status."""

    async def show(exc: FederationError) -> Response:
        return await _instance(request, actor, message(request, exc), exc.status)

    return show


@members_only
async def instance_verify(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def verify(form: Any) -> Done:
        await nodes.verify(db, settings, actor, slug, field(form, "method") or "http")
        text = N_("Domaine vérifié. Le nœud attend maintenant l’approbation de la fédération.")
        return Done(text, f"/federation/instances/{slug}")

    return await form_action(request, verify, refused_on_node(request, actor))


@members_only
async def instance_decision(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def decide(form: Any) -> Done:
        await db.run(nodes.decide, settings, actor, slug, field(form, "action"), field(form, "reason"))
        text = N_("Décision enregistrée; l’hébergeur est prévenu par courriel.")
        return Done(text, f"/federation/instances/{slug}")

    return await form_action(request, decide, refused_on_node(request, actor))


@members_only
async def instance_secret(request: Request, member: Member, actor: Actor) -> Response:
    """Re-key the client and show the secret once, with the configuration to paste."""
    settings, db = deps(request)
    form, error = await form_or_error(request)
    if error:
        return error
    seen = field(form, "rotated_at") if "rotated_at" in form else None  # the node page's form always has it
    revoke_now = form.get("revoke_now") == "on"
    try:
        instance, client_id, secret = await db.run(
            nodes.reveal_secret, settings, actor, request.path_params["slug"], revoke_now=revoke_now, seen=seen
        )
    except FederationError as exc:
        return await _instance(request, actor, message(request, exc), exc.status)
    context = {
        "instance": instance,
        "client_id": client_id,
        "secret": secret,
        "snippets": snippets.for_instance(
            settings.issuer,
            instance,
            client_id,
            secret,
            await db.run(audience.restriction_groups, instance),
            webhook_secret=provisioning.discourse_webhook_secret(settings.secret_key, instance),
        ),
        "discovery": snippets.discovery_url(settings.issuer),
    }
    return render(request, "federation/configuration.html", context, headers={"Cache-Control": "no-store"})


@members_only
async def link_decision(request: Request, member: Member, actor: Actor) -> Response:
    _s, db = deps(request)

    async def decide(form: Any) -> Done:
        accept = field(form, "decision") == "accept"
        link_id = request.path_params["link_id"]
        link = await db.run(audience.decide_link, actor, link_id, accept=accept, reason=field(form, "reason"))
        text = N_("Lien confirmé.") if accept else N_("Lien refusé.")
        return Done(text, local_next(form, f"/federation/links/{link.id}"))

    return await form_action(request, decide)


@members_only
async def hoster_governance(request: Request, member: Member, actor: Actor) -> Response:
    """Federation administrators: suspend, reinstate or exclude a hoster (its nodes follow)."""
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def govern(form: Any) -> Done:
        await db.run(governance.govern, settings, actor, slug, field(form, "action"), field(form, "reason"))
        return Done(N_("Décision enregistrée; l’hébergeur et les organisations desservies sont prévenus."),
                    "/federation/admin")  # fmt: skip

    return await form_action(request, govern)


@members_only
async def hoster_charter(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def accept(_form: Any) -> Done:
        await db.run(governance.accept_charter, settings, actor, slug)
        return Done(N_("Charte acceptée."), f"/federation/hosters/{slug}")

    return await form_action(request, accept)


@members_only
async def hoster_reapply(request: Request, member: Member, actor: Actor) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]

    async def reapply(form: Any) -> Done:
        accepted = form.get("accept_charter") == "on"
        await db.run(governance.reapply, settings, actor, slug, accept_charter=accepted)
        return Done(N_("Votre nouvelle demande est enregistrée."), f"/federation/hosters/{slug}")

    return await form_action(request, reapply)
