"""The portal's pages: the member's home (``/``) with tiles, search, discovery and notifications;
pinning and reordering tiles; and the embeddable navigation menu (``/widget/menu.js`` + ``.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from portail.accounts.current import action_required, load_login, require_verified, unverified_page
from portail.accounts.models import Member, Organization
from portail.dashboard import notification_summary, tiles, widget
from portail.dashboard.discover import Discovery, discover
from portail.db import Database
from portail.web import STATIC, FormError, _, field, flash, json_error, read_form, render, request_locale

MENU_JS = STATIC / "widget" / "menu.js"


@dataclass(frozen=True)
class Home:
    tiles: list[tiles.Tile]
    discovery: Discovery
    notices: notification_summary.Summary
    territory: Organization | None


def _home(db: Session, member: Member) -> Home:
    circles = tiles.circles_of(db, member)
    mine = tiles.tiles_for(db, member, circles)
    seen = {t.instance_id for t in mine}
    return Home(
        tiles=mine,
        discovery=discover(db, member, circles, seen),
        notices=notification_summary.summary(db, member.id or 0),
        territory=circles.territory,
    )


async def home(request: Request) -> Response:
    login = await load_login(request)
    if login is None:
        return render(request, "dashboard/welcome.html", {})
    if not login.member.verified:
        return unverified_page(request, 200)
    db: Database = request.app.state.db
    data = await db.run(_home, login.member)
    query = request.query_params.get("q", "").strip()[:200]
    shown = tiles.search(data.tiles, query)
    return render(
        request,
        "dashboard/home.html",
        {
            "home": data,
            "tiles": shown,
            "query": query,
            "total": len(data.tiles),
            "notices": data.notices,
            "welcome": WELCOMED_COOKIE not in request.cookies,
        },
    )


WELCOMED_COOKIE = "portail_welcomed"


async def dismiss_welcome(request: Request) -> Response:
    """Hide the first-visit welcome of the home page in this browser (a form; works without JavaScript)."""
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    try:
        await read_form(request)
    except FormError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/", status_code=303)
    response = RedirectResponse("/", status_code=303)
    secure = request.app.state.settings.issuer.startswith("https://")
    response.set_cookie(WELCOMED_COOKIE, "1", max_age=365 * 86400, httponly=True, samesite="lax", secure=secure)
    return response


async def arrange_tile(request: Request) -> Response:
    """Pin, unpin or move a tile (a form with ``action``; works without JavaScript)."""
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    try:
        form = await read_form(request)
    except FormError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/", status_code=303)
    action = field(form, "action")
    db: Database = request.app.state.db
    tile = await db.run(tiles.arrange, login.member, request.path_params["slug"], action)
    if tile is None:
        return render(
            request,
            "accounts/message.html",
            {"title": _(request, "Mes outils"), "error": _(request, "Cet outil ne fait pas partie des vôtres.")},
            404,
        )
    messages = {
        "pin": _(request, "« %(name)s » est épinglé.", name=tile.name),
        "unpin": _(request, "« %(name)s » n’est plus épinglé.", name=tile.name),
        "up": _(request, "« %(name)s » est monté d’un rang.", name=tile.name),
        "down": _(request, "« %(name)s » est descendu d’un rang.", name=tile.name),
    }
    flash(request, messages[action], "success")
    query = field(form, "q")
    target = "/?q=" + quote(query) if query else "/"
    return RedirectResponse(f"{target}#tile-{tile.slug}", status_code=303)


# ---------------------------------------------------------------- navigation menu


async def menu_js(request: Request) -> Response:
    """The embeddable script: public, cacheable, loadable from any origin."""
    return Response(
        MENU_JS.read_bytes(),
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "public, max-age=300",
        },
    )


def _menu_labels(request: Request) -> dict[str, str]:
    return {
        "button": _(request, "Mes outils En commun"),
        "menu": _(request, "Mes outils"),
        "unread_one": _(request, "1 notification non lue"),
        "unread_many": _(request, "%(count)s notifications non lues", count="{count}"),
        "portal": _(request, "Ouvrir le portail"),
        "notifications": _(request, "Notifications"),
        "account": _(request, "Mon compte"),
        "empty": _(request, "Aucun outil pour l’instant."),
        "current": _(request, "vous êtes ici"),
        "down": _(request, "hors service"),
        "demo": _(request, "démonstration"),
        "login": _(request, "Se connecter à Portail"),
        "close": _(request, "Fermer le menu"),
        "review": _(request, "Portail a changé sa politique de confidentialité : lisez-la avant de continuer."),
        "review_link": _(request, "Lire la politique"),
    }


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
        "Cache-Control": "no-store, private",
    }


def _menu_data(db: Session, member: Member) -> tuple[list[tiles.Tile], notification_summary.Summary]:
    return tiles.tiles_for(db, member), notification_summary.summary(db, member.id or 0)


async def menu_json(request: Request) -> Response:
    """The member's tools and unread count, readable by the origins of active instances only."""
    db: Database = request.app.state.db
    issuer = str(request.app.state.settings.issuer).rstrip("/")
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin", "Cache-Control": "no-store, private"}
    if origin and origin != widget.origin_of(issuer):
        if not await db.run(widget.allowed_origin, origin):
            return json_error("origin_not_allowed", "This origin is not a registered, active instance.", 403, headers)
        headers = _cors(origin)
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = "GET"
        headers["Access-Control-Max-Age"] = "600"
        return Response(status_code=204, headers=headers)
    login = await load_login(request)
    if login is None or not login.member.verified:
        body = {
            "error": "login_required",
            "error_description": "No Portail session in this browser.",
            "login_url": f"{issuer}/login",
            "labels": _menu_labels(request),
        }
        return JSONResponse(body, status_code=401, headers=headers)
    if login.pending_step:  # a changed privacy policy to accept first (Law 25): no menu until then
        return action_required(issuer, login.pending_step, headers, labels=_menu_labels(request))
    mine, summary = await db.run(_menu_data, login.member)
    payload = widget.menu(
        mine,
        summary,
        issuer=issuer,
        labels=_menu_labels(request),
        member_name=login.member.name,
        locale=request_locale(request),
        current_origin=origin,
    )
    return JSONResponse(payload, headers=headers)


routes = [
    Route("/", home, methods=["GET"], name="home"),
    Route("/welcome/dismiss", dismiss_welcome, methods=["POST"], name="welcome_dismiss"),
    Route("/tiles/{slug}", arrange_tile, methods=["POST"], name="tile_arrange"),
    Route("/widget/menu.js", menu_js, methods=["GET"], name="widget_menu_js"),
    Route("/widget/menu.json", menu_json, methods=["GET", "OPTIONS"], name="widget_menu_json"),
]
