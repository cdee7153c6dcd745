"""Dynamic Client Registration endpoints: RFC 7591 (``POST /register``) and RFC 7592
(``GET``/``PUT``/``DELETE`` on ``registration_client_uri`` = ``/register/{client_id}``).

Registration needs an initial access token (``Authorization: Bearer``, RFC 7591 §3) unless
``open_client_registration`` is on; a presented but invalid token is refused even then. Errors are
JSON: RFC 7591 §3.2.2 (400 ``invalid_redirect_uri`` / ``invalid_client_metadata``) and RFC 6750 §3
for bearer problems (401 ``invalid_token`` with ``WWW-Authenticate``). authlib's
``ClientRegistrationEndpoint`` is not used: it expects authlib's request adapter and its own client
model, and the validation that matters (exact URIs, https, loopback only in tests) lives in
``client_metadata``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portail.config import Settings
from portail.oidc import client_metadata, clients, initial_tokens
from portail.oidc.client_metadata import MetadataError, Registered
from portail.web import json_body, json_error

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class BearerProblem(Exception):
    """RFC 6750 §3: the bearer token is missing or invalid."""


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _unauthorized(description: str, *, invalid: bool = True) -> Response:
    challenge = 'Bearer error="invalid_token"' if invalid else 'Bearer realm="portail"'
    return json_error("invalid_token", description, 401, {"WWW-Authenticate": challenge})


async def _json_body(request: Request) -> Any:
    """The metadata document, read by the one JSON body reader (size, type, depth, Unicode, object)."""
    try:
        return await json_body.read_json(request)
    except json_body.JsonBodyError as exc:  # RFC 7591 §3.2.2: 400 invalid_client_metadata; too large: 413
        if exc.status == 413:
            raise MetadataError("invalid_request", exc.description, 413) from exc
        raise MetadataError("invalid_client_metadata", exc.description) from exc


def _register(db: Session, settings: Settings, token: str | None, metadata: Any) -> Registered:
    client_metadata.spec_from_metadata(metadata, settings)  # refuse bad metadata before spending a use
    if token is not None or not settings.open_client_registration:
        if token is None or not initial_tokens.consume(db, token):
            raise BearerProblem
    return client_metadata.register(db, metadata, settings)


async def register(request: Request) -> Response:
    """RFC 7591 §3.1: create a client from its metadata."""
    settings: Settings = request.app.state.settings
    token = _bearer(request)
    if token is None and not settings.open_client_registration:
        return _unauthorized("an initial access token is required", invalid=False)
    try:
        metadata = await _json_body(request)
        registered = await request.app.state.db.run(_register, settings, token, metadata)
    except MetadataError as exc:
        return json_error(exc.error, exc.description, exc.status)
    except BearerProblem:
        return _unauthorized("the initial access token is invalid, expired or used up")
    body = client_metadata.metadata_of(registered.client, settings.issuer, registered)
    return JSONResponse(body, status_code=201, headers=NO_STORE)


def _configure(db: Session, settings: Settings, client_id: str, token: str, method: str, metadata: Any) -> Any:
    client = client_metadata.authorized_client(db, client_id, token)
    if client is None:
        raise BearerProblem
    if method == "GET":
        return client_metadata.metadata_of(client, settings.issuer)
    if method == "DELETE":  # RFC 7592 §2.3: the same deletion as ``portail clients delete``
        clients.delete_client(db, client, reason="deleted by the client (RFC 7592)")
        return None
    registered = client_metadata.replace(db, client, metadata, settings)
    return client_metadata.metadata_of(registered.client, settings.issuer, registered)


async def configure(request: Request) -> Response:
    """RFC 7592 §2: read, replace or delete a registered client with its registration access token.

    The token is checked before a ``PUT`` body is read: a caller without it learns nothing from
    how its body is refused (and never makes Portail parse it)."""
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    token = _bearer(request)
    if token is None:
        return _unauthorized("a registration access token is required", invalid=False)
    client_id = request.path_params["client_id"]
    try:
        metadata = None
        if request.method == "PUT":
            if await db.run(client_metadata.authorized_client, client_id, token) is None:
                raise BearerProblem
            metadata = await _json_body(request)
        body = await db.run(_configure, settings, client_id, token, request.method, metadata)
    except MetadataError as exc:
        return json_error(exc.error, exc.description, exc.status)
    except BearerProblem:
        return _unauthorized("the registration access token is invalid")
    if body is None:
        return Response(status_code=204, headers=NO_STORE)
    return JSONResponse(body, headers=NO_STORE)
