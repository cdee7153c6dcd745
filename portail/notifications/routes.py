"""Pages of the notification hub: the inbox, its actions, preferences, account linking, the live
stream (Server-Sent Events) and the digests' one-click unsubscribe. The JSON API is in ``api.py``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from portail.accounts.current import Login, load_login, require_verified
from portail.db import Database, row_id, utcnow
from portail.federation.models import Instance
from portail.notifications import digests, gateway, inbox, linking, planning, read_state, user_api_keys
from portail.notifications.fetcher import SourceError
from portail.notifications.hub import Hub
from portail.notifications.models import DIGESTS
from portail.notifications.sources import discourse, matrix
from portail.web import FormError, _, error_page, flash, read_form, render

HEARTBEAT_SECONDS = 15.0
# Besides the protocol endpoints ``create_app`` passes (``oidc.routes.MACHINE_PATHS``):
BADGE_SKIP = (
    "/static/",
    "/api/",
    "/notifications/stream",
    "/widget/",
    # The authorization endpoint answers the tools with redirects; the count would be wasted there
    # (its consent page simply shows no badge).
    "/authorize",
)


class UnreadBadge:
    """Sets ``request.state.unread_count`` on members' pages (the navigation's badge): one indexed count."""

    def __init__(self, app: ASGIApp, protocol_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip = (*BADGE_SKIP, *protocol_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not str(scope["path"]).startswith(self.skip):
            member = scope.get("state", {}).get("member")
            if member is not None and member.id is not None:
                db: Database = scope["app"].state.db
                # One indexed count on every member page: inline on SQLite, as the session lookup
                # before it (``Database.run_short``), instead of a hop to a database thread.
                scope["state"]["unread_count"] = await db.run_short(inbox.unread_count, member.id)
        await self.app(scope, receive, send)


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.notifications
    return hub


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _int(value: str | None) -> int | None:
    return row_id(value) if value else None


async def _member(request: Request) -> Login | Response:
    return await require_verified(request)


async def inbox_page(request: Request) -> Response:
    login = await _member(request)
    if isinstance(login, Response):
        return login
    member_id = login.member.id or 0
    # Cache-first: the page is drawn from stored notifications; stale sources are refreshed in the
    # background and what they bring arrives over the live stream. The page never waits for a tool.
    _hub(request).aggregator.refresh_soon(member_id)
    filters = inbox.Filters(
        instance_id=_int(request.query_params.get("tool")),
        kind=(request.query_params.get("type") or None),
        unread_only=request.query_params.get("unread") == "1",
        before_id=_int(request.query_params.get("before")),
    )

    def load(session: Session) -> dict[str, object]:
        rows = inbox.list_for(session, member_id, filters)
        failing = inbox.source_statuses(session, member_id)
        return {
            "rows": rows,
            "unread": inbox.unread_count(session, member_id),
            "kinds": inbox.kinds_for(session, member_id),
            "tools": inbox.instance_choices(session, member_id),
            "failing": sorted({i.name for i, _s in failing}),
            "freshness": planning.freshness(session, member_id),
            "now": utcnow(),
        }

    context = await _db(request).run(load)
    context.update({"filters": filters, "page_size": inbox.PAGE})
    return render(request, "notifications/inbox.html", context)


async def _form_action(request: Request) -> tuple[Login, dict[str, str]] | Response:
    login = await _member(request)
    if isinstance(login, Response):
        return login
    try:
        form = await read_form(request)
    except FormError as exc:
        return error_page(request, 400, exc.message)
    return login, {k: v for k, v in form.items() if isinstance(v, str)}


async def mark_read(request: Request) -> Response:
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, _form = found
    hub, member_id, notification_id = _hub(request), login.member.id or 0, request.path_params["id"]
    receipts = await _db(request).run(read_state.for_one, hub.settings, member_id, notification_id)
    await _db(request).run(inbox.mark_read, member_id, notification_id)
    await read_state.propagate(hub.aggregator.fetcher, receipts)
    return RedirectResponse("/notifications", status_code=303)


async def mark_all_read(request: Request) -> Response:
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, form = found
    hub, member_id, tool = _hub(request), login.member.id or 0, _int(form.get("tool"))
    receipts = await _db(request).run(read_state.for_all, hub.settings, member_id, tool)
    count = await _db(request).run(inbox.mark_all_read, member_id, tool)
    await read_state.propagate(hub.aggregator.fetcher, receipts)
    flash(request, _(request, "%(count)s notification(s) marquée(s) comme lue(s).", count=count))
    return RedirectResponse("/notifications", status_code=303)


async def dismiss(request: Request) -> Response:
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, _form = found
    result = await _db(request).run(inbox.dismiss, login.member.id or 0, request.path_params["id"])
    if result is None:
        return error_page(request, 404)
    await _hub(request).aggregator.dismiss_at_source(*result)
    return RedirectResponse("/notifications", status_code=303)


async def preferences_page(request: Request) -> Response:
    login = await _member(request)
    if isinstance(login, Response):
        return login
    member_id = login.member.id or 0

    def load(session: Session) -> dict[str, object]:
        return {
            "tools": inbox.instance_choices(session, member_id),
            "prefs": inbox.preferences(session, member_id),
            "links": linking.links_of(session, member_id),
            "pushers": gateway.pushers_of(session, member_id),
        }

    return render(request, "notifications/preferences.html", {**await _db(request).run(load), "digests": DIGESTS})


async def save_preference(request: Request) -> Response:
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, form = found
    digest = form.get("digest", "none")
    if digest not in DIGESTS:
        return error_page(request, 400)
    saved = await _db(request).run(
        inbox.set_preference,
        login.member.id or 0,
        request.path_params["instance_id"],
        enabled=form.get("enabled") == "1",
        digest=digest,
    )
    if not saved:
        return error_page(request, 404)
    flash(request, _(request, "Préférences enregistrées."))
    return RedirectResponse("/notifications/preferences", status_code=303)


async def _active_instance(request: Request, software: str) -> Instance | None:
    """The active instance of this software named by the path's ``instance_id``, or None."""
    instance = await _db(request).run(lambda s: s.get(Instance, request.path_params["instance_id"]))
    if instance is None or instance.software != software or instance.status != "active":
        return None
    return instance


async def _start_link(request: Request, software: str) -> Response:
    """POST from the preferences page: send the member to the tool to authorize Portail."""
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, _form = found
    instance = await _active_instance(request, software)
    if instance is None:
        return error_page(request, 404)
    member_id = login.member.id or 0
    if software == "matrix":
        target = linking.matrix_redirect(_hub(request).settings, member_id, instance)
    else:
        target = await _db(request).run(user_api_keys.begin, _hub(request).settings, member_id, instance)
    return RedirectResponse(target, status_code=303)


async def link_matrix(request: Request) -> Response:
    return await _start_link(request, "matrix")


async def matrix_callback(request: Request) -> Response:
    login = await _member(request)
    if isinstance(login, Response):
        return login
    hub = _hub(request)
    member_id = login.member.id or 0
    instance_id = linking.read_state(hub.settings, request.query_params.get("state", ""), member_id)
    token = request.query_params.get("loginToken", "")
    instance = await _db(request).run(lambda s: s.get(Instance, instance_id)) if instance_id else None
    if instance is None or not token or len(token) > 512:
        return error_page(request, 400, _(request, "Ce lien de liaison Matrix est invalide ou a expiré."))
    base_url = instance.base_url.rstrip("/")
    try:
        user_id, device_id, access_token = await matrix.exchange_login_token(hub.aggregator.fetcher, base_url, token)
    except SourceError:
        return error_page(request, 400, _(request, "Le serveur Matrix a refusé la liaison. Veuillez réessayer."))
    previous = await _db(request).run(
        linking.store_link,
        hub.settings,
        member_id,
        instance.id or 0,
        kind="matrix",
        account=user_id,
        secret=access_token,
        device_id=device_id,
    )
    if previous:
        try:
            await matrix.logout(hub.aggregator.fetcher, base_url, previous)
        except SourceError:
            pass
    await gateway.register(
        hub.aggregator.fetcher, _db(request), hub.settings, member_id, instance.id or 0, base_url, access_token
    )
    flash(request, _(request, "Compte Matrix %(user)s lié.", user=user_id))
    return RedirectResponse("/notifications", status_code=303)


async def link_discourse(request: Request) -> Response:
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, form = found
    key, username = field_value(form, "api_key"), field_value(form, "username")
    instance = await _db(request).run(lambda s: s.get(Instance, request.path_params["instance_id"]))
    if instance is None or instance.software != "discourse" or not key or len(key) > 200:
        return error_page(request, 400)
    await _db(request).run(
        linking.store_link,
        _hub(request).settings,
        login.member.id or 0,
        instance.id or 0,
        kind="discourse",
        account=username,
        secret=key,
    )
    flash(request, _(request, "Compte Discourse lié."))
    return RedirectResponse("/notifications/preferences", status_code=303)


async def authorize_discourse(request: Request) -> Response:
    """Start Discourse's User API key flow (``user_api_keys.py``): off to Discourse's approval page."""
    return await _start_link(request, "discourse")


async def discourse_callback(request: Request) -> Response:
    """Discourse's redirect back: ``?state=…&payload=…`` (the encrypted User API key)."""
    login = await _member(request)
    if isinstance(login, Response):
        return login
    settings, member_id = _hub(request).settings, login.member.id or 0
    state, payload = request.query_params.get("state", ""), request.query_params.get("payload", "")
    try:
        pending = await _db(request).run(user_api_keys.consume, settings, member_id, state)
        key = user_api_keys.open_payload(settings, pending, payload)
    except user_api_keys.KeyFlowError as exc:
        return error_page(request, 400, _(request, exc.message))
    await _db(request).run(
        linking.store_link, settings, member_id, pending.instance_id, kind="discourse", account="", secret=key
    )
    flash(request, _(request, "Compte Discourse lié."))
    return RedirectResponse("/notifications/preferences", status_code=303)


def field_value(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


async def unlink(request: Request) -> Response:
    found = await _form_action(request)
    if isinstance(found, Response):
        return found
    login, _form = found
    hub = _hub(request)
    removed = await _db(request).run(
        linking.remove_link, hub.settings, login.member.id or 0, request.path_params["instance_id"]
    )
    if removed is not None:
        kind, base_url, credential = removed
        try:
            if kind == "matrix":
                await gateway.unregister(hub.aggregator.fetcher, hub.settings, base_url, credential)
                await matrix.logout(hub.aggregator.fetcher, base_url, credential)
            elif kind == "discourse":
                await discourse.revoke(hub.aggregator.fetcher, base_url, credential)
        except SourceError:
            pass
    flash(request, _(request, "Compte délié."))
    return RedirectResponse("/notifications/preferences", status_code=303)


async def stream(request: Request) -> Response:
    """Server-Sent Events: ``unread`` (the badge) and ``notification`` (a new item) for this member."""
    login = await load_login(request)
    if login is None:
        return error_page(request, 401)
    member_id = login.member.id or 0
    hub = _hub(request)

    async def events() -> AsyncIterator[str]:
        async with hub.broker.subscribe(member_id) as queue:
            yield "retry: 5000\n\n"
            while True:
                try:
                    notification_id = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                payload = await _db(request).run(_event_payload, member_id, notification_id)
                if payload is not None:
                    yield f"event: notification\nid: {notification_id}\ndata: {json.dumps(payload)}\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _event_payload(session: Session, member_id: int, notification_id: int) -> dict[str, object] | None:
    row = inbox.get(session, member_id, notification_id)
    if row is None:
        return None
    instance = session.get(Instance, row.instance_id)
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "type": row.kind,
        "link": row.link,
        "tool": instance.name if instance else "",
        "unread": inbox.unread_count(session, member_id),
    }


async def unsubscribe(request: Request) -> Response:
    """GET shows one button; POST (the button, or a mail client's RFC 8058 one-click) unsubscribes."""
    token = request.path_params["token"]
    settings = _hub(request).settings
    if digests.read_token(settings, token) is None:
        return error_page(request, 400, _(request, "Ce lien de désabonnement est invalide."))
    if request.method == "GET":
        return render(request, "notifications/unsubscribe.html", {"token": token, "done": False})
    await _db(request).run(digests.unsubscribe, settings, token)
    return render(request, "notifications/unsubscribe.html", {"token": token, "done": True})


routes = [
    Route("/notifications", inbox_page, methods=["GET"], name="notifications"),
    Route("/notifications/stream", stream, methods=["GET"], name="notifications_stream"),
    Route("/notifications/read-all", mark_all_read, methods=["POST"], name="notifications_read_all"),
    Route("/notifications/{id:int}/read", mark_read, methods=["POST"], name="notifications_read"),
    Route("/notifications/{id:int}/dismiss", dismiss, methods=["POST"], name="notifications_dismiss"),
    Route("/notifications/preferences", preferences_page, methods=["GET"], name="notifications_preferences"),
    Route("/notifications/preferences/{instance_id:int}", save_preference, methods=["POST"]),
    Route("/notifications/link/matrix/{instance_id:int}", link_matrix, methods=["POST"]),
    Route(linking.CALLBACK, matrix_callback, methods=["GET"], name="notifications_matrix_callback"),
    Route("/notifications/link/discourse/{instance_id:int}", link_discourse, methods=["POST"]),
    Route("/notifications/link/discourse/{instance_id:int}/authorize", authorize_discourse, methods=["POST"]),
    Route(user_api_keys.CALLBACK, discourse_callback, methods=["GET"], name="notifications_discourse_callback"),
    Route("/notifications/unlink/{instance_id:int}", unlink, methods=["POST"]),
    Route("/notifications/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"], name="notifications_unsubscribe"),
]
