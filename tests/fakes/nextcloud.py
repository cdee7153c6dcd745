"""A fake Nextcloud notifications app, written from its published API documentation
(nextcloud/notifications ``docs/ocs-endpoint-v2.md``) — not from Nextcloud's code, and not Nextcloud.

What it reproduces:
- ``GET /ocs/v2.php/apps/notifications/api/v2/notifications``: requires ``OCS-APIRequest: true``
  (otherwise 412, like Nextcloud's CSRF check for API calls); ``Authorization: Bearer <token>`` is checked
  by ``accept_token`` (user_oidc with ``--check-bearer=1``; a refused token is 401 with an OCS body);
  JSON when ``Accept: application/json`` or ``format=json``, XML otherwise; the envelope
  ``{"ocs": {"meta": {"status", "statuscode", "message"}, "data": [...]}}`` with every documented
  field; at most 25 notifications, newest first; an ``ETag`` over the list, and ``304`` when
  ``If-None-Match`` matches (the behaviour documented up to Nextcloud 21); ``204`` when the user has none
  and ``no_app`` is set.
- ``DELETE …/notifications/{id}``: 200, or 404 for an unknown id (dismiss).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PATH = "/ocs/v2.php/apps/notifications/api/v2/notifications"


@dataclass
class FakeNextcloud:
    accept_token: Callable[[str], str | None]  # bearer token -> Nextcloud user id, or None
    notifications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user -> newest first
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    no_app: bool = False
    next_id: int = 1

    def notify(self, user: str, subject: str, message: str = "", app: str = "files", link: str = "") -> int:
        notification_id = self.next_id
        self.next_id += 1
        self.notifications.setdefault(user, []).insert(
            0,
            {
                "notification_id": notification_id,
                "app": app,
                "user": user,
                "datetime": f"2026-11-20T10:0{notification_id % 10}:00+00:00",
                "object_type": "file" if app == "files" else app,
                "object_id": str(notification_id),
                "subject": subject,
                "subjectRich": "",
                "subjectRichParameters": [],
                "message": message,
                "messageRich": "",
                "messageRichParameters": [],
                "link": link,
                "icon": "",
                "shouldNotify": True,
                "actions": [],
            },
        )
        return notification_id

    def _ocs(self, status: int, data: Any, message: str = "OK", headers: dict[str, str] | None = None) -> Response:
        body = {
            "ocs": {
                "meta": {"status": "ok" if status < 400 else "failure", "statuscode": status, "message": message},
                "data": data,
            }
        }
        return JSONResponse(body, status_code=status, headers=headers)

    def _user(self, request: Request) -> str | Response:
        self.requests.append((request.method, request.url.path, dict(request.headers)))
        if request.headers.get("ocs-apirequest") != "true":
            return self._ocs(412, [], "CSRF check failed")
        auth = request.headers.get("authorization", "")
        user = self.accept_token(auth[7:]) if auth.lower().startswith("bearer ") else None
        if user is None:
            return self._ocs(401, [], "Current user is not logged in")
        return user

    async def list(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        if self.no_app:
            return Response(status_code=204)
        data = self.notifications.get(user, [])[:25]
        etag = '"' + hashlib.md5(json.dumps(data, sort_keys=True).encode()).hexdigest() + '"'  # noqa: S324
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        if "application/json" not in request.headers.get("accept", "") and request.query_params.get("format") != "json":
            xml = '<?xml version="1.0"?><ocs><meta><status>ok</status></meta><data/></ocs>'
            return Response(xml, media_type="application/xml", headers={"ETag": etag})
        return self._ocs(200, data, headers={"ETag": etag, "X-Nextcloud-User-Status": "online"})

    async def delete(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        wanted = int(request.path_params["id"])
        items = self.notifications.get(user, [])
        kept = [n for n in items if n["notification_id"] != wanted]
        if len(kept) == len(items):
            return self._ocs(404, [], "Not found")
        self.notifications[user] = kept
        return self._ocs(200, [])

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(PATH, self.list, methods=["GET"]),
                Route(PATH + "/{id:int}", self.delete, methods=["DELETE"]),
            ]
        )
