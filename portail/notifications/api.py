"""JSON API of the notification hub (under ``/api/v1/``; errors ``{"error", "error_description"}``).

- ``POST /api/v1/notifications``: the push API for instances (``push.py``; contract in
  ``docs/notifications-api.md``). Bearer access token from ``client_credentials`` with scope
  ``notifications:push`` (RFC 6750 §3 errors with ``WWW-Authenticate``).
- ``POST /_matrix/push/v1/notify``: the Matrix Push Gateway API for linked members' homeservers
  (``gateway.py``); answers ``{"rejected": [pushkey, …]}``.
- ``POST /api/v1/notifications/discourse/{slug}``: a Discourse forum's notification webhook
  (``webhooks.py``; ``X-Discourse-Event-Signature`` HMAC-SHA256, replays refused).
- ``/api/v1/me/notifications…``: the member's inbox for the portal's scripts and the widget, with the
  session cookie. State-changing calls require ``Content-Type: application/json`` (a cross-site form
  cannot send it without a CORS preflight, which Portail never grants) on top of SameSite=Lax cookies.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portail.accounts.current import action_required, load_login
from portail.db import Database, row_id
from portail.federation.models import Instance
from portail.notifications import gateway, inbox, push, read_state, webhooks
from portail.notifications.hub import Hub
from portail.notifications.models import DIGESTS, Notification
from portail.oidc.tokens import InvalidToken, verify_access_token
from portail.web import json_body, json_error

MAX_BODY = 1_000_000


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.notifications
    return hub


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _bearer_error(error: str, description: str, status: int) -> Response:
    challenge = f'Bearer realm="portail", error="{error}", error_description="{description}"'
    if error == "invalid_request" and status == 401:
        challenge = 'Bearer realm="portail"'
    return json_error(error, description, status, headers={"WWW-Authenticate": challenge})


async def _json_body(request: Request, *, batch: bool = False) -> Any:
    """The body, read by the one JSON body reader; a batch's items are inspected one by one later."""
    try:
        if batch:
            return await json_body.read_json(request, max_bytes=MAX_BODY, inspect=False)
        return await json_body.read_json(request, allow_empty=True)
    except json_body.JsonBodyError as exc:
        raise push.PushRejected("invalid_request", exc.description, exc.status) from exc


async def push_notifications(request: Request) -> Response:
    hub = _hub(request)
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        return _bearer_error("invalid_request", "A bearer access token is required", 401)
    try:
        claims = await _db(request).run(
            verify_access_token, hub.settings, authorization[7:].strip(), required_scope=push.SCOPE
        )
        pusher = await _db(request).run(push.pusher_for, str(claims.get("client_id")))
        items = push.parse_batch(await _json_body(request, batch=True), hub.settings.notification_push_batch_max)
    except InvalidToken as exc:
        status = 403 if exc.error == "insufficient_scope" else 401
        return _bearer_error(exc.error, exc.description, status)
    except push.PushRejected as exc:
        return json_error(exc.error, exc.description, exc.status)
    retry_after = await hub.limiter.consume(pusher.instance.id or 0, len(items))
    if retry_after:
        return json_error(
            "rate_limited",
            "Too many notifications from this instance; retry later",
            429,
            {"Retry-After": str(retry_after)},
        )
    answers, delivered = await _db(request).run(push.accept, hub.settings, pusher, items)
    await hub.announce(delivered)
    counts = {status: sum(1 for a in answers if a["status"] == status) for status in push.STATUSES}
    return JSONResponse({"results": answers, **counts}, headers={"Cache-Control": "no-store"})


async def matrix_notify(request: Request) -> Response:
    """Push Gateway API v1 ``POST /_matrix/push/v1/notify``: a linked member's homeserver pushes
    (``gateway.py``); unknown pushkeys are answered in ``rejected``."""
    hub = _hub(request)
    try:
        call = gateway.parse(await _json_body(request))
    except (push.PushRejected, gateway.GatewayRejected) as exc:
        return json_error(exc.error, exc.description, exc.status)
    known = await _db(request).run(gateway.targets, [pushkey for pushkey, _tweaks in call.devices])
    caller = request.client.host if request.client else None
    for target in known.values():
        if hub.settings.notification_push_gateway_check_source and not await gateway.source_matches(
            target.base_url, caller
        ):
            return json_error("access_denied", "This call does not come from the linked homeserver", 403)
    for instance_id in sorted({target.instance_id for target in known.values()}):
        retry_after = await hub.limiter.consume(instance_id, 1)
        if retry_after:
            return json_error(
                "rate_limited", "Too many pushes from this homeserver", 429, {"Retry-After": str(retry_after)}
            )
    delivered = await _db(request).run(gateway.receive, call, list(known.values()))
    await hub.announce(delivered)
    return JSONResponse({"rejected": [key for key, _tweaks in call.devices if key not in known]})


async def discourse_webhook(request: Request) -> Response:
    """A Discourse forum's notification webhook (``webhooks.py``): signed, never replayed, rate-limited."""
    hub = _hub(request)
    try:
        payload = await _json_body(request)
        hook = await _db(request).run(webhooks.hook_for, hub.settings, request.path_params["slug"])
        if not webhooks.signature_valid(
            hook.secret, await request.body(), request.headers.get("x-discourse-event-signature")
        ):
            return json_error("invalid_signature", "X-Discourse-Event-Signature does not match the body", 401)
        event_type = request.headers.get("x-discourse-event-type", "")
        if event_type != webhooks.EVENT_TYPE:
            return JSONResponse({"delivered": 0, "ignored": event_type or "unknown"})  # ping, other events
        event_id = webhooks.event_id_of(request.headers.get("x-discourse-event-id"))
        retry_after = await hub.limiter.consume(hook.instance_id, 1)
        if retry_after:
            return json_error("rate_limited", "Too many webhook calls", 429, {"Retry-After": str(retry_after)})
        delivered = await _db(request).run(webhooks.receive, hook, event_id, payload)
    except (push.PushRejected, webhooks.WebhookRejected) as exc:
        return json_error(exc.error, exc.description, exc.status)
    await hub.announce(delivered)
    return JSONResponse({"delivered": len(delivered)})


# ---------------------------------------------------------------- the member's inbox


def _public(row: Notification, instance: Instance) -> dict[str, Any]:
    return {
        "id": row.id,
        "tool": {"id": instance.id, "name": instance.name, "software": instance.software},
        "type": row.kind,
        "title": row.title,
        "body": row.body,
        "link": row.link,
        "created_at": row.created_at.isoformat(),
        "read": row.read_at is not None,
    }


async def _member_id(request: Request) -> int | Response:
    """The logged-in member's id, or the error to answer: 401 without a session, 403
    ``action_required`` while the member has a step to take first (a changed privacy policy to
    accept, Law 25): their notifications are not served until they have seen what changed."""
    login = await load_login(request)
    if login is None or not login.member.verified or login.member.id is None:
        return json_error("unauthorized", "Log in to Portail first", 401)
    if login.pending_step:
        return action_required(str(request.app.state.settings.issuer), login.pending_step)
    return login.member.id


async def my_notifications(request: Request) -> Response:
    member_id = await _member_id(request)
    if isinstance(member_id, Response):
        return member_id
    hub = _hub(request)
    report = await hub.aggregator.refresh_member(member_id, budget=hub.settings.inbox_budget_seconds)
    params = request.query_params
    tool, before, limit = params.get("tool", ""), params.get("before", ""), params.get("limit", "")
    filters = inbox.Filters(
        instance_id=row_id(tool),
        kind=params.get("type") or None,
        unread_only=params.get("unread") in ("1", "true"),
        before_id=row_id(before),
        limit=int(limit) if limit.isascii() and limit.isdecimal() and len(limit) < 4 else inbox.PAGE,
    )

    def load(session: Session) -> dict[str, Any]:
        rows = inbox.list_for(session, member_id, filters)
        return {
            "notifications": [_public(n, i) for n, i in rows],
            "unread": inbox.unread_count(session, member_id),
            "unreachable": report.unreachable,
        }

    return JSONResponse(await _db(request).run(load), headers={"Cache-Control": "no-store"})


async def my_unread(request: Request) -> Response:
    member_id = await _member_id(request)
    if isinstance(member_id, Response):
        return member_id
    count = await _db(request).run(inbox.unread_count, member_id)
    return JSONResponse({"unread": count}, headers={"Cache-Control": "no-store"})


async def _mutation(request: Request) -> tuple[int, Any] | Response:
    member_id = await _member_id(request)
    if isinstance(member_id, Response):
        return member_id
    try:
        return member_id, await _json_body(request)
    except push.PushRejected as exc:
        return json_error(exc.error, exc.description, exc.status)


async def my_read(request: Request) -> Response:
    found = await _mutation(request)
    if isinstance(found, Response):
        return found
    hub, member_id, notification_id = _hub(request), found[0], request.path_params["id"]
    receipts = await _db(request).run(read_state.for_one, hub.settings, member_id, notification_id)
    if not await _db(request).run(inbox.mark_read, member_id, notification_id):
        return json_error("not_found", "No such notification", 404)
    propagated = await read_state.propagate(hub.aggregator.fetcher, receipts)
    return JSONResponse({"read": True, "read_at_source": propagated > 0})


async def my_read_all(request: Request) -> Response:
    found = await _mutation(request)
    if isinstance(found, Response):
        return found
    hub, member_id, tool = _hub(request), found[0], found[1].get("tool")
    instance_id = row_id(tool) if isinstance(tool, int) else None
    if tool is not None and instance_id is None:
        return json_error("invalid_request", '"tool" must be the id of a tool', 400)
    receipts = await _db(request).run(read_state.for_all, hub.settings, member_id, instance_id)
    count = await _db(request).run(inbox.mark_all_read, member_id, instance_id)
    await read_state.propagate(hub.aggregator.fetcher, receipts)
    return JSONResponse({"marked": count})


async def my_dismiss(request: Request) -> Response:
    found = await _mutation(request)
    if isinstance(found, Response):
        return found
    result = await _db(request).run(inbox.dismiss, found[0], request.path_params["id"])
    if result is None:
        return json_error("not_found", "No such notification", 404)
    propagated = await _hub(request).aggregator.dismiss_at_source(*result)
    return JSONResponse({"dismissed": True, "dismissed_at_source": propagated})


async def my_preferences(request: Request) -> Response:
    member_id = await _member_id(request)
    if isinstance(member_id, Response):
        return member_id
    if request.method == "PUT":
        found = await _mutation(request)
        if isinstance(found, Response):
            return found
        body = found[1]
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("tool"), int)
            or not isinstance(body.get("enabled"), bool)
            or body.get("digest", "none") not in DIGESTS
        ):
            return json_error("invalid_request", 'Expected {"tool": int, "enabled": bool, "digest": ...}', 400)
        saved = await _db(request).run(
            inbox.set_preference, member_id, body["tool"], enabled=body["enabled"], digest=body.get("digest", "none")
        )
        if not saved:
            return json_error("not_found", "No such tool", 404)
    prefs = await _db(request).run(inbox.preferences, member_id)
    return JSONResponse(
        {"preferences": [{"tool": p.instance_id, "enabled": p.enabled, "digest": p.digest} for p in prefs.values()]}
    )


routes = [
    Route("/api/v1/notifications", push_notifications, methods=["POST"], name="api_push_notifications"),
    Route(gateway.NOTIFY_PATH, matrix_notify, methods=["POST"], name="matrix_push_gateway"),
    Route("/api/v1/notifications/discourse/{slug}", discourse_webhook, methods=["POST"], name="discourse_webhook"),
    Route("/api/v1/me/notifications", my_notifications, methods=["GET"], name="api_my_notifications"),
    Route("/api/v1/me/notifications/unread", my_unread, methods=["GET"], name="api_my_unread"),
    Route("/api/v1/me/notifications/read-all", my_read_all, methods=["POST"]),
    Route("/api/v1/me/notifications/{id:int}/read", my_read, methods=["POST"]),
    Route("/api/v1/me/notifications/{id:int}/dismiss", my_dismiss, methods=["POST"]),
    Route("/api/v1/me/notifications/preferences", my_preferences, methods=["GET", "PUT"]),
]
