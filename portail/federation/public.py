"""Public federation pages (route handlers, no login): the directory (HTML with filters and JSON),
its CHATONS StatoolInfos ``.properties`` export, Portail's own NodeInfo, and the federation charter."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from portail.federation import chatons, directory, nodeinfo
from portail.federation.pages import deps
from portail.web import N_, _, error_page, render

CHARTER = [
    N_(
        "Les hébergeurs de la fédération En commun hébergent des logiciels libres pour des organisations et des "
        "territoires du Québec."
    ),
    N_("Ils protègent les renseignements personnels des membres selon la Loi 25 et n’en font aucun commerce."),
    N_(
        "Ils publient leurs conditions, leurs tarifs s’il y a lieu, et préviennent les membres avant tout arrêt "
        "de service."
    ),
    N_("Ils gardent leurs nœuds à jour, les sauvegardent et répondent aux demandes de la fédération."),
    N_("Ils acceptent que la fédération suspende un nœud qui met des membres en danger."),
]
TEXT = "text/plain; charset=utf-8"


def _filters(request: Request) -> directory.Filters:
    q = request.query_params
    return directory.Filters(
        region=q.get("region", "")[:2],
        software=q.get("software", "")[:20],
        hoster=q.get("hoster", "")[:80],
        organization=q.get("organization", "")[:80],
    )


async def directory_page(request: Request) -> Response:
    _s, db = deps(request)
    filters = _filters(request)
    data = await db.run(directory.page, filters)
    return render(
        request, "federation/directory.html", {**data, "filters": filters, "software_labels": directory.SOFTWARE_LABELS}
    )


async def directory_json(request: Request) -> Response:
    settings, db = deps(request)
    data = await db.run(directory.as_json, settings.issuer, _filters(request))
    return JSONResponse(data, headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"})


def _properties(request: Request, built: chatons.Built | None) -> Response:
    """A StatoolInfos file, or 404: unknown, or withheld because mandatory data are missing (said why)."""
    if built is None:
        return error_page(request, 404)
    if not built.publishable:
        reason = "Fichier non publié : données obligatoires manquantes ou invalides / not published: "
        return PlainTextResponse(reason + "; ".join(built.problems) + "\n", status_code=404, media_type=TEXT)
    return PlainTextResponse(built.text, media_type=TEXT)


async def statool_federation(request: Request) -> Response:
    settings, db = deps(request)
    return _properties(request, await db.run(chatons.federation_file, settings))


async def statool_hoster(request: Request) -> Response:
    settings, db = deps(request)
    return _properties(request, await db.run(chatons.hoster_properties, settings, request.path_params["slug"]))


async def statool_service(request: Request) -> Response:
    settings, db = deps(request)
    return _properties(request, await db.run(chatons.service_properties, settings, request.path_params["slug"]))


async def nodeinfo_links(request: Request) -> Response:
    settings = request.app.state.settings
    return JSONResponse(nodeinfo.links(settings), headers={"Access-Control-Allow-Origin": "*"})


async def nodeinfo_document(request: Request) -> Response:
    settings, db = deps(request)
    body = await db.run(nodeinfo.document, settings)
    profile = f'application/json; profile="{nodeinfo.SCHEMA}#"'
    headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=600"}
    return JSONResponse(body, media_type=profile, headers=headers)


async def charter(request: Request) -> Response:
    settings = request.app.state.settings
    return render(
        request,
        "legal.html",
        {
            "title": _(request, "Charte de la fédération"),
            "version": settings.federation_charter_version,
            "paragraphs": [_(request, p) for p in CHARTER],
        },
    )
