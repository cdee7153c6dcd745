"""The OpenAPI 3.1 document of Portail's JSON API, served at ``/api/v1/openapi.json``.

A registry any package at or above ``federation`` can add to (notifications, dashboard, consent
import it; the federation package owns ``/api/v1`` plumbing because API credentials — personal API
tokens and hosters' clients — live here). Register operations when your API module is imported::

    from portail.federation import openapi
    openapi.add_scope("notifications:push", "Push notifications for members")
    openapi.add_schema("Notification", {...})
    openapi.add_operation("/api/v1/notifications", "post", summary="…", tag="notifications",
                          scope="notifications:push", request="Notification", responses={"202": "Accepted"})

``document(issuer)`` assembles what was registered; paths and schemas are plain dicts, so a package
can describe anything OpenAPI allows. Registering the same path and method twice replaces the first
description (modules may be imported more than once in tests).
"""

from __future__ import annotations

import copy
from typing import Any

_paths: dict[str, dict[str, dict[str, Any]]] = {}
_schemas: dict[str, dict[str, Any]] = {}
_scopes: dict[str, str] = {}
_tags: dict[str, str] = {}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def add_scope(name: str, description: str) -> None:
    _scopes[name] = description


def add_tag(name: str, description: str) -> None:
    _tags[name] = description


def add_schema(name: str, schema: dict[str, Any]) -> None:
    _schemas[name] = schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def add_operation(
    path: str,
    method: str,
    *,
    summary: str,
    tag: str,
    scope: str | None = None,
    request: str | None = None,
    response: str | None = None,
    responses: dict[str, str] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    description: str = "",
    operation_id: str | None = None,
) -> None:
    """Describe one operation. ``scope=None`` means no authentication; ``request``/``response`` name schemas."""
    answers: dict[str, Any] = {}
    for status, text in (responses or {"200": "OK"}).items():
        answer: dict[str, Any] = {"description": text}
        if response and status.startswith("2"):
            answer["content"] = {"application/json": {"schema": _ref(response)}}
        answers[status] = answer
    if scope:
        answers.setdefault("401", {"description": "Missing or invalid bearer token"})
        answers.setdefault("403", {"description": "Insufficient scope or not allowed"})
    for status, answer in answers.items():
        if status[0] in "45":
            answer.setdefault("content", {"application/json": {"schema": _ref("Error")}})
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "operationId": operation_id or f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", ""),
        "responses": answers,
    }
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if request:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(request)}}}
    operation["security"] = [{"bearer": []}, {"hosterClient": [scope]}] if scope else []
    _paths.setdefault(path, {})[method.lower()] = operation


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def document(issuer: str) -> dict[str, Any]:
    """The whole OpenAPI document for a Portail whose public URL is ``issuer``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portail En commun API",
            "version": "1",
            "description": 'JSON API of Portail. Errors are {"error": code, "error_description": text}.',
        },
        "servers": [{"url": issuer}],
        "tags": [{"name": n, "description": d} for n, d in sorted(_tags.items())],
        "paths": copy.deepcopy(dict(sorted(_paths.items()))),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **copy.deepcopy(_schemas)},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token (pat_...) created on /account/api-tokens, "
                    "or an access token of a hoster's client.",
                },
                "hosterClient": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {"tokenUrl": f"{issuer}/token", "scopes": dict(sorted(_scopes.items()))}
                    },
                },
            },
        },
    }
