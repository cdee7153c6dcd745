"""The push API's and the Discourse webhook's published contract: JSON schemas registered in ``/api/v1/openapi.json``
(``federation.openapi``) when the package is installed. ``docs/notifications-api.md`` shows the same
schemas with examples."""

from __future__ import annotations

from typing import Any

from portail.federation import openapi
from portail.notifications.push import MAX_BODY, MAX_ID, MAX_TITLE, SCOPE

ITEM: dict[str, Any] = {
    "type": "object",
    "required": ["id", "sub", "title"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID, "description": "The instance's own id"},
        "sub": {"type": "string", "description": "The member's subject as this instance's client knows it"},
        "title": {
            "type": "string",
            "minLength": 1,
            "description": f"Plain text (markup is stripped), {MAX_TITLE} chars",
        },
        "body": {"type": "string", "description": f"Plain text (markup is stripped), {MAX_BODY} chars"},
        "type": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,39}$", "default": "info"},
        "link": {"type": "string", "format": "uri", "description": "Absolute URL on the instance's own origin"},
        "created_at": {"type": "string", "format": "date-time", "description": "RFC 3339 with a time zone"},
    },
    "additionalProperties": True,
}
BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["notifications"],
    "properties": {
        "notifications": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/PushItem"}}
    },
}
RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"enum": ["accepted", "duplicate", "unknown_member", "invalid"]},
                    "error": {"type": "string", "description": "Why an invalid item was refused"},
                    "index": {"type": "integer", "description": "Position of an invalid item in the batch"},
                },
            },
        },
        "accepted": {"type": "integer"},
        "duplicate": {"type": "integer"},
        "unknown_member": {"type": "integer"},
        "invalid": {"type": "integer"},
    },
}


def register() -> None:
    openapi.add_scope(SCOPE, "Push notifications to members (client_credentials)")
    openapi.add_tag("notifications", "Notification hub")
    openapi.add_schema("PushItem", ITEM)
    openapi.add_schema("PushBatch", BATCH)
    openapi.add_schema("PushResult", RESULT)
    openapi.add_operation(
        "/api/v1/notifications",
        "post",
        summary="Push a batch of notifications for members",
        tag="notifications",
        scope=SCOPE,
        request="PushBatch",
        response="PushResult",
        responses={
            "200": "Each item answered",
            "400": "Malformed body",
            "413": "Batch too large",
            "415": "Not JSON",
            "429": "Rate limited (Retry-After)",
            "503": "Database unreachable (Retry-After)",
        },
        description="See docs/notifications-api.md. Idempotent on (instance, id).",
        operation_id="push_notifications",
    )
    openapi.add_schema(
        "DiscourseWebhookResult",
        {
            "type": "object",
            "required": ["delivered"],
            "properties": {"delivered": {"type": "integer"}, "ignored": {"type": "string"}},
        },
    )
    openapi.add_operation(
        "/api/v1/notifications/discourse/{slug}",
        "post",
        summary="A Discourse forum's notification webhook",
        tag="notifications",
        response="DiscourseWebhookResult",
        parameters=[{"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}],
        responses={
            "200": "Delivered to the linked members (or a ping / another event, ignored)",
            "400": "Malformed body or X-Discourse-Event-Id",
            "401": "X-Discourse-Event-Signature is not the HMAC-SHA256 of the body with this instance's secret",
            "404": "No active Discourse instance with this slug",
            "409": "This X-Discourse-Event-Id was already received (replay)",
            "415": "Not JSON",
            "429": "Rate limited (Retry-After)",
        },
        description=(
            "Authenticated by X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the raw body>, with the "
            "per-instance secret Portail shows in the Discourse snippet. See docs/notifications-api.md §7."
        ),
        operation_id="discourse_webhook",
    )
