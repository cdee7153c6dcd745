"""A fake Discourse, written from Discourse's published API documentation (the "User API keys
specification" on meta.discourse.org and the notifications API in docs.discourse.org) — not Discourse.

- ``GET /notifications.json`` with header ``User-Api-Key``: ``{"notifications": [...],
  "total_rows_notifications", "seen_notification_id", "load_more_notifications"}``, newest first, each
  notification with ``id, user_id, notification_type, read, high_priority, created_at, post_number,
  topic_id, fancy_title, slug, data{topic_title, original_post_id, original_post_type,
  original_username, display_username}``. An unknown or revoked key answers 403 with
  ``{"errors": [...], "error_type": "invalid_access"}`` (Discourse's answer for a bad API key).
- ``PUT /notifications/mark-read.json`` (``{"id": n}`` or no id for all): ``{"success": "OK"}``.
No ETag: Discourse does not send one here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeDiscourse:
    keys: dict[str, str] = field(default_factory=dict)  # User API key -> username
    notifications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 100

    def notify(self, username: str, topic_title: str, *, kind: int = 1, by: str = "bob") -> int:
        notification_id = self.next_id
        self.next_id += 1
        self.notifications.setdefault(username, []).insert(
            0,
            {
                "id": notification_id,
                "user_id": 7,
                "notification_type": kind,
                "read": False,
                "high_priority": kind == 6,
                "created_at": "2026-11-20T12:00:00.000Z",
                "post_number": 2,
                "topic_id": 42,
                "fancy_title": topic_title,
                "slug": "un-sujet",
                "data": {
                    "topic_title": topic_title,
                    "original_post_id": 99,
                    "original_post_type": 1,
                    "original_username": by,
                    "revision_number": None,
                    "display_username": by,
                },
            },
        )
        return notification_id

    def _user(self, request: Request) -> str | Response:
        user = self.keys.get(request.headers.get("user-api-key", ""))
        if user is None:
            return JSONResponse(
                {"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"},
                status_code=403,
            )
        return user

    async def index(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        items = self.notifications.get(user, [])[:60]
        return JSONResponse(
            {
                "notifications": items,
                "total_rows_notifications": len(items),
                "seen_notification_id": 0,
                "load_more_notifications": "/notifications?offset=60&username=" + user,
            }
        )

    async def mark_read(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        body = await request.json() if await request.body() else {}
        for item in self.notifications.get(user, []):
            if "id" not in body or item["id"] == body["id"]:
                item["read"] = True
        return JSONResponse({"success": "OK"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/notifications.json", self.index, methods=["GET"]),
                Route("/notifications/mark-read.json", self.mark_read, methods=["PUT"]),
            ]
        )
