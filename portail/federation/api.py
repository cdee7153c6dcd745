"""The federation's JSON API under ``/api/v1/federation/…`` (route handlers) and ``/api/v1/openapi.json``.

Authentication: RFC 6750 bearer tokens (``credentials.authenticate``): personal API tokens or a
hoster's ``client_credentials`` access token. Errors are ``{"error": code, "error_description": text}``
with the right status, and a ``WWW-Authenticate: Bearer …`` header on 401/403 (RFC 6750 §3). Each
operation is described in the OpenAPI document next to its handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portail.federation import (
    acceptance,
    audience,
    chatons,
    credentials,
    directory,
    governance,
    hosters,
    lifecycle,
    nodes,
    openapi,
    overview,
    proof_recheck,
    provisioning,
    relocation,
    residency,
    snippets,
)
from portail.federation.credentials import BearerError, Principal
from portail.federation.hosters import Application
from portail.federation.lifecycle import NodeEdit
from portail.federation.nodes import NodeForm
from portail.federation.pages import client_ip, deps
from portail.federation.rules import FederationError
from portail.web import json_body, json_error, translate

MAX_BODY = 64 * 1024
PREFIX = "/api/v1/federation"
Handler = Callable[[Request, Principal | None, dict[str, Any]], Awaitable[Response]]


class BadBody(Exception):
    """A request body the API refuses: answered ``invalid_request`` with ``status``."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.status = status


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of a POST/PUT, read by the one JSON body reader (an empty body is ``{}``)."""
    try:
        data: dict[str, Any] = await json_body.read_json(request, max_bytes=MAX_BODY, allow_empty=True)
    except json_body.JsonBodyError as exc:
        raise BadBody(exc.description, exc.status) from exc
    return data


def _text(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float | bool):
        raise BadBody(f"'{key}' must be a string.")
    return str(value).strip()


def _list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadBody(f"'{key}' must be a list of strings.")
    return [v.strip() for v in value]


def _given(data: dict[str, Any], key: str) -> str | None:
    """A text field of a ``PATCH`` body: ``None`` when absent (left as it is)."""
    return _text(data, key) if key in data else None


def _prose(data: dict[str, Any], key: str) -> str | None:
    """A free text of a ``PATCH`` body (a description): ``None`` when absent (left as it is), ``""``
    for ``null`` (cleared); anything but a string is refused."""
    if key not in data:
        return None
    value = data[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadBody(f"'{key}' must be a string.")
    return value.strip()


def _given_list(data: dict[str, Any], key: str) -> list[str] | None:
    """A list of a ``PATCH`` body: ``None`` when absent (left as it is); ``null`` or ``[]`` clear it."""
    return _list(data, key) if key in data else None


def _flag(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadBody(f"'{key}' must be true or false.")
    return value


def endpoint(scope: str | None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate (when ``scope``), parse the JSON body, call, and map refusals to API errors."""

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            settings, db = deps(request)
            try:
                principal = None
                if scope:
                    header = request.headers.get("authorization")
                    principal = await db.run(credentials.authenticate, settings, header, scope, client_ip(request))
                body = await _body(request) if request.method in ("POST", "PUT", "PATCH", "DELETE") else {}
                return await handler(request, principal, body)
            except BearerError as exc:
                challenge = f'Bearer error="{exc.code}", error_description="{exc.description}"'
                if exc.code == "invalid_request":
                    challenge = 'Bearer realm="portail"'
                return json_error(exc.code, exc.description, exc.status, {"WWW-Authenticate": challenge})
            except BadBody as exc:
                return json_error("invalid_request", str(exc), exc.status)
            except FederationError as exc:
                return json_error(exc.code, translate("en", exc.message, **exc.params), exc.status)

        wrapped.__name__ = handler.__name__
        return wrapped

    return decorate


def _actor(principal: Principal | None) -> Any:
    assert principal is not None
    return principal.actor


def _personal(principal: Principal | None) -> Principal:
    assert principal is not None
    if principal.member is None:
        raise FederationError("Cette action demande un jeton personnel.", status=403, code="forbidden")
    return principal


# ---------------------------------------------------------------- OpenAPI and directory


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi.document(request.app.state.settings.issuer))


@endpoint(None)
async def directory_list(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    q = request.query_params
    filters = directory.Filters(
        q.get("region", "")[:2], q.get("software", "")[:20], q.get("hoster", "")[:80], q.get("organization", "")[:80]
    )
    return JSONResponse(await db.run(directory.as_json, settings.issuer, filters))


# ---------------------------------------------------------------- hosters


@endpoint("federation:write")
async def hoster_apply(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    caller = _personal(principal)
    application = Application(
        name=_text(body, "name"),
        contact_email=_text(body, "contact_email"),
        website=_text(body, "website"),
        description=_text(body, "description"),
        region=_text(body, "region"),
        accept_charter=body.get("accept_charter") is True,
        slug=_text(body, "slug"),
    )
    hoster = await db.run(hosters.apply, settings, caller.actor, application)
    return JSONResponse(await db.run(hosters.view_for, caller.actor, hoster.slug), status_code=201)


@endpoint("federation:read")
async def hoster_get(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    _s, db = deps(request)
    return JSONResponse(await db.run(hosters.view_for, _actor(principal), request.path_params["slug"]))


@endpoint("federation:write")
async def hoster_edit(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """``PATCH``: the hoster's CHATONS organization data (only the keys given; ``""`` or null clears one),
    by its administrators or the federation; answers the hoster with ``changed`` (the keys that changed)."""
    _s, db = deps(request)
    unknown = sorted(set(body) - set(chatons.ORGANIZATION_FIELDS))
    if unknown:
        raise BadBody(f"Unknown or read-only keys: {', '.join(unknown)[:200]}.")
    slug = request.path_params["slug"]
    values = {key: _text(body, key) for key in body}
    _hoster, changed = await db.run(chatons.edit_organization, _actor(principal), slug, values)
    return JSONResponse({**await db.run(hosters.view_for, _actor(principal), slug), "changed": changed})


def _hoster_decision(approve: bool) -> Handler:
    async def handler(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
        settings, db = deps(request)
        slug = request.path_params["slug"]
        await db.run(hosters.decide, settings, _actor(principal), slug, approve=approve, reason=_text(body, "reason"))
        return JSONResponse(await db.run(hosters.view_for, _actor(principal), slug))

    handler.__name__ = "hoster_approve" if approve else "hoster_refuse"
    return handler


hoster_approve = endpoint("federation:admin")(_hoster_decision(True))
hoster_refuse = endpoint("federation:admin")(_hoster_decision(False))


def _hoster_governance(action: str) -> Handler:
    async def handler(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
        settings, db = deps(request)
        slug = request.path_params["slug"]
        actor = _actor(principal)
        if action == "charter":
            await db.run(governance.accept_charter, settings, actor, slug)
        elif action == "reapply":
            await db.run(governance.reapply, settings, actor, slug, accept_charter=body.get("accept_charter") is True)
        else:
            await db.run(governance.govern, settings, actor, slug, action, _text(body, "reason"))
        return JSONResponse(await db.run(hosters.view_for, actor, slug))

    handler.__name__ = f"hoster_{action}"
    return handler


HOSTER_ENDPOINTS = {
    action: endpoint("federation:admin" if action in governance.ACTIONS else "federation:write")(
        _hoster_governance(action)
    )
    for action in (*governance.ACTIONS, "charter", "reapply")
}


# ---------------------------------------------------------------- instances


@endpoint("federation:write")
async def instance_register(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    form = NodeForm(
        software=_text(body, "software"),
        name=_text(body, "name"),
        base_url=_text(body, "base_url"),
        scope=_text(body, "scope", "organization"),
        organization=_text(body, "organization"),
        provider_identifier=_text(body, "provider_identifier", "encommun") or "encommun",
        redirect_uris=_list(body, "redirect_uris"),
        post_logout_redirect_uris=_list(body, "post_logout_redirect_uris"),
        backchannel_logout_uri=_text(body, "backchannel_logout_uri"),
        slug=_text(body, "slug"),
        push_notifications=_flag(body, "push_notifications"),
        jwks_uri=_text(body, "jwks_uri"),
    )
    instance = await nodes.register(db, settings, _actor(principal), _text(body, "hoster"), form)
    view = await db.run(overview.view_for, _actor(principal), instance.slug)
    return JSONResponse(view, status_code=201, headers={"Location": f"{PREFIX}/instances/{instance.slug}"})


@endpoint("federation:read")
async def instance_list(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    _s, db = deps(request)
    q = request.query_params
    rows = await db.run(
        overview.views_for, _actor(principal), hoster_slug=q.get("hoster", "")[:80], status=q.get("status", "")[:20]
    )
    return JSONResponse({"instances": rows, "count": len(rows)})


@endpoint("federation:read")
async def instance_get(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    _s, db = deps(request)
    return JSONResponse(await db.run(overview.view_for, _actor(principal), request.path_params["slug"]))


@endpoint("federation:write")
async def instance_verify(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]
    await nodes.verify(db, settings, _actor(principal), slug, _text(body, "method", "http") or "http")
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


@endpoint("federation:write")
async def instance_proof_check(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """Check the proof of control now (``method``: http | dns; default the node's own); 422 when it fails."""
    settings, db = deps(request)
    slug = request.path_params["slug"]
    await proof_recheck.check_now(db, settings, _actor(principal), slug, _text(body, "method") or None)
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


FACTS = lifecycle.FACTS
EDITABLE = ("version", *lifecycle.EDITABLE_FIELDS)


async def _configuration(request: Request, instance: Any) -> list[dict[str, str]]:
    """The configuration snippets with a placeholder for the secret (never shown again)."""
    settings, db = deps(request)
    groups = await db.run(audience.restriction_groups, instance)
    return [
        {"title": translate("en", s.title), "language": s.language, "text": s.text}
        for s in snippets.for_instance(settings.issuer, instance, instance.client_id or "", None, groups)
    ]


@endpoint("federation:write")
async def instance_edit(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """``PATCH``: change the keys given (``version`` refuses a concurrent edit with a 409)."""
    settings, db = deps(request)
    unknown = sorted(set(body) - set(EDITABLE) - set(FACTS))
    if unknown:
        raise BadBody(f"Unknown or read-only keys: {', '.join(unknown)[:200]}.")
    change = NodeEdit(
        version=_given(body, "version"),
        name=_given(body, "name"),
        description=_prose(body, "description"),
        description_en=_prose(body, "description_en"),  # "" shows the French one to English-speaking members
        purposes=_given_list(body, "purposes"),
        purposes_en=_given_list(body, "purposes_en"),
        data_categories=_given_list(body, "data_categories"),
        data_categories_en=_given_list(body, "data_categories_en"),
        login_url=_given(body, "login_url"),
        provider_identifier=_given(body, "provider_identifier"),
        nextcloud_provider_id=_given(body, "nextcloud_provider_id"),
        push_notifications=_flag(body, "push_notifications"),
        redirect_uris=_given_list(body, "redirect_uris"),
        post_logout_redirect_uris=_given_list(body, "post_logout_redirect_uris"),
        backchannel_logout_uri=_given(body, "backchannel_logout_uri"),
        contact_email=_given(body, "contact_email"),
        members_only=_flag(body, "members_only"),
        jwks_uri=_given(body, "jwks_uri"),
        facts={k: _text(body, k) for k in FACTS if k in body},  # CHATONS service data, data residency
    )
    slug = request.path_params["slug"]
    instance, changed = await db.run(lifecycle.edit, settings, _actor(principal), slug, change)
    view = await db.run(overview.view_for, _actor(principal), slug)
    shown = instance.status == "active" and instance.client_id
    return JSONResponse(
        {**view, "changed": changed, "snippets": await _configuration(request, instance) if shown else []}
    )


@endpoint("federation:write")
async def instance_delete(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """``DELETE``: retire the node (a reason, in the body or ``?reason=``); its URL is released."""
    settings, db = deps(request)
    slug = request.path_params["slug"]
    reason = _text(body, "reason") or request.query_params.get("reason", "")[:1000]
    await db.run(nodes.decide, settings, _actor(principal), slug, "retire", reason)
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


@endpoint("federation:write")
async def instance_transfer(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]
    await db.run(relocation.offer_transfer, settings, _actor(principal), slug, _text(body, "hoster"))
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


@endpoint("federation:write")
async def instance_transfer_decision(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """The receiving hoster accepts or refuses; the offering hoster withdraws with ``accept: false``."""
    settings, db = deps(request)
    accept = body.get("accept")
    if not isinstance(accept, bool):
        raise BadBody("'accept' must be true or false.")
    instance = await db.run(
        relocation.answer_transfer, settings, _actor(principal), request.path_params["slug"], accept=accept
    )
    return JSONResponse({"slug": instance.slug, "transfer": "accepted" if accept else "cancelled"})


@endpoint("federation:write")
async def instance_move(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]
    await relocation.request_move(db, settings, _actor(principal), slug, _text(body, "base_url"))
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


@endpoint("federation:write")
async def instance_move_verify(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    slug = request.path_params["slug"]
    method = _text(body, "method", "http") or "http"
    instance = await relocation.verify_move(db, settings, _actor(principal), slug, method)
    view = await db.run(overview.view_for, _actor(principal), slug)
    return JSONResponse({**view, "snippets": await _configuration(request, instance) if instance.client_id else []})


@endpoint("federation:write")
async def instance_move_cancel(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    _s, db = deps(request)
    slug = request.path_params["slug"]
    await db.run(relocation.cancel_move, _actor(principal), slug)
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


@endpoint("federation:write")
async def instance_organization(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """The served organization's administrators: ``decision`` accept | refuse | withdraw."""
    settings, db = deps(request)
    slug = request.path_params["slug"]
    decision, reason = _text(body, "decision"), _text(body, "reason")
    instance = await db.run(acceptance.decide, settings, _actor(principal), slug, decision, reason)
    return JSONResponse({"slug": instance.slug, "organization_status": instance.organization_status})


def _instance_decision(action: str) -> Handler:
    async def handler(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
        settings, db = deps(request)
        slug = request.path_params["slug"]
        await db.run(nodes.decide, settings, _actor(principal), slug, action, _text(body, "reason"))
        return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))

    handler.__name__ = f"instance_{action}"
    return handler


DECISION_ENDPOINTS = {
    action: endpoint("federation:write" if action == "retire" else "federation:admin")(_instance_decision(action))
    for action in nodes.DECISIONS
}


@endpoint("federation:admin")
async def instance_pia(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    """Record the node's privacy impact assessment (Law 25): a node whose data leave Québec needs it to be approved."""
    settings, db = deps(request)
    slug = request.path_params["slug"]
    await db.run(residency.record_pia, settings, _actor(principal), slug, _text(body, "note"))
    return JSONResponse(await db.run(overview.view_for, _actor(principal), slug))


@endpoint("federation:write")
async def instance_secret(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    seen = _text(body, "rotated_at") if "rotated_at" in body else None
    revoke_now = _flag(body, "revoke_previous") is True
    instance, client_id, secret = await db.run(
        nodes.reveal_secret, settings, _actor(principal), request.path_params["slug"], revoke_now=revoke_now, seen=seen
    )
    data = {
        "client_id": client_id,
        "client_secret": secret,
        "discovery": snippets.discovery_url(settings.issuer),
        "snippets": [
            {"title": translate("en", s.title), "language": s.language, "text": s.text}
            for s in snippets.for_instance(
                settings.issuer,
                instance,
                client_id,
                secret,
                await db.run(audience.restriction_groups, instance),
                webhook_secret=provisioning.discourse_webhook_secret(settings.secret_key, instance),
            )
        ],
    }
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- links


@endpoint("federation:write")
async def link_request(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    settings, db = deps(request)
    link = await db.run(
        audience.request_link, settings, _actor(principal), _text(body, "organization"), _text(body, "instance")
    )
    return JSONResponse({"id": link.id, "status": link.status}, status_code=201)


@endpoint("federation:write")
async def link_decide(request: Request, principal: Principal | None, body: dict[str, Any]) -> Response:
    _s, db = deps(request)
    accept = body.get("accept")
    if not isinstance(accept, bool):
        raise BadBody("'accept' must be true or false.")
    link = await db.run(
        audience.decide_link,
        _actor(principal),
        request.path_params["link_id"],
        accept=accept,
        reason=_text(body, "reason"),
    )
    return JSONResponse({"id": link.id, "status": link.status})


openapi.description()  # read when the application starts: a package without the file fails here
