"""Public federation pages (route handlers, no login): the directory (HTML with filters and JSON),
its CHATONS StatoolInfos ``.properties`` export, and the federation charter."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from portail.federation import directory
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


async def statool_federation(request: Request) -> Response:
    settings, db = deps(request)
    return PlainTextResponse(await db.run(directory.federation_file, settings.issuer), media_type=TEXT)


async def statool_hoster(request: Request) -> Response:
    settings, db = deps(request)
    body = await db.run(directory.hoster_properties, settings.issuer, request.path_params["slug"])
    if body is None:
        return error_page(request, 404)
    return PlainTextResponse(body, media_type=TEXT)


async def statool_service(request: Request) -> Response:
    settings, db = deps(request)
    body = await db.run(directory.service_properties, settings.issuer, request.path_params["slug"])
    if body is None:
        return error_page(request, 404)
    return PlainTextResponse(body, media_type=TEXT)


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
