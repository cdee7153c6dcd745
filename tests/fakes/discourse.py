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

The User API key flow, as ``app/controllers/user_api_keys_controller.rb`` does it (AUTH_API_VERSION 4):
- ``GET /user-api-key/new?application_name&client_id&scopes&public_key&nonce[&auth_redirect][&push_url]``:
  ``HEAD`` answers 200 with header ``Auth-Api-Version: 4``; a missing parameter is 400; scopes outside
  ``allowed_scopes`` or a public key that does not parse show Discourse's generic error page; without a
  session (cookie ``_t`` here, as Discourse's) it redirects to ``/login``; otherwise it shows the approval
  page whose form posts the same parameters to ``POST /user-api-key``.
- ``POST /user-api-key`` (needs the session): ``auth_redirect`` must match a pattern of
  ``allowed_user_api_auth_redirects`` (``*`` matches anything, whole URL, case-insensitive) else 403
  ``invalid_access``; the user's older keys of the same ``client_id`` are destroyed; the payload is the
  JSON ``{"key","nonce","push","api"}`` encrypted with the public key (RSA PKCS #1 v1.5, Ruby's
  ``public_encrypt`` default), Base64-encoded with Ruby's ``Base64.encode64`` (a newline every 60
  characters), CGI-escaped and appended to ``auth_redirect``'s query as ``payload=…`` (302).
- ``POST /user-api-key/revoke`` with ``User-Api-Key``: revokes that key; ``{"success": "OK"}``.
Simplified: the approval form carries no ``authenticity_token`` (Rails CSRF), and a key has only the
scopes it was made with (not checked on ``/notifications.json``).

Webhooks, written from Discourse's source (``app/jobs/regular/emit_web_hook_event.rb`` and the
``WebHook`` model, ``app/models/web_hook.rb``): with ``web_hook_url`` set, ``notify_by_web_hook`` makes a
notification and posts what ``Jobs::EmitWebHookEvent#send_webhook!`` posts for a ``notification_created``
event: the body
``{"notification": <the NotificationSerializer hash>}`` (``MultiJson.dump``), headers ``Accept: */*``,
``Content-Type: application/json``, ``User-Agent: Discourse/<version>``, ``X-Discourse-Instance``,
``X-Discourse-Event-Id`` (the id of the ``WebHookEvent`` row, one per delivery),
``X-Discourse-Event-Type: notification``, ``X-Discourse-Event: notification_created`` and, when the
web hook has a secret, ``X-Discourse-Event-Signature: sha256=<OpenSSL::HMAC.hexdigest("sha256", secret,
body)>``. ``ping`` posts ``{"ping": "OK"}`` with event type ``ping``. Each user has their own
``user_id``. Not modelled: retries (``retry_web_hook``), category/group/tag filters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class WebHookDelivery:
    """One web hook POST: its URL, headers and raw body (what the signature covers)."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeDiscourse:
    keys: dict[str, str] = field(default_factory=dict)  # User API key -> username
    notifications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 100
    sessions: dict[str, str] = field(default_factory=dict)  # cookie _t -> username
    allowed_user_api_auth_redirects: list[str] = field(default_factory=list)  # the site setting, split on |
    allowed_scopes: frozenset[str] = frozenset(
        {"read", "write", "message_bus", "push", "notifications", "session_info", "one_time_password"}
    )
    key_clients: dict[str, str] = field(default_factory=dict)  # User API key -> client_id
    revoked: list[str] = field(default_factory=list)
    user_ids: dict[str, int] = field(default_factory=dict)  # username -> Discourse user id
    web_hook_url: str | None = None
    web_hook_secret: str = ""
    web_hook_events: list[tuple[int, int]] = field(default_factory=list)  # (event id, answer status)
    base_url: str = "http://discourse.invalid"

    AUTH_API_VERSION = 4
    REQUIRED = ("nonce", "scopes", "client_id", "public_key", "application_name")

    def log_in(self, username: str) -> str:
        """A browser session for ``username``: the value of cookie ``_t``."""
        token = secrets.token_hex(16)
        self.sessions[token] = username
        return token

    def user_id(self, username: str) -> int:
        return self.user_ids.setdefault(username, 7 + len(self.user_ids))

    def web_hook_request(self, event_type: str, payload: Any, *, event_id: int | None = None) -> WebHookDelivery:
        """The request ``Jobs::EmitWebHookEvent`` builds (``build_webhook_body``, ``build_webhook_headers``)."""
        assert self.web_hook_url is not None
        body = json.dumps({"ping": "OK"} if event_type == "ping" else {event_type: payload}).encode()
        if event_id is None:
            event_id = len(self.web_hook_events) + 1
        headers = {
            "Accept": "*/*",
            "Connection": "close",
            "Content-Type": "application/json",
            "User-Agent": "Discourse/3.4.0",
            "X-Discourse-Instance": self.base_url,
            "X-Discourse-Event-Id": str(event_id),
            "X-Discourse-Event-Type": event_type,
        }
        if event_type == "notification":
            headers["X-Discourse-Event"] = "notification_created"
        if self.web_hook_secret:
            digest = hmac.new(self.web_hook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Discourse-Event-Signature"] = f"sha256={digest}"
        return WebHookDelivery(self.web_hook_url, headers, body)

    def emit(self, delivery: WebHookDelivery, client: Any = None) -> Any:
        """Post a delivery (with ``client``, e.g. a test client, else over HTTP) and log the answer."""
        if client is None:
            with httpx.Client(timeout=10) as http:
                answer = http.post(delivery.url, headers=delivery.headers, content=delivery.body)
        else:
            answer = client.post(delivery.url, headers=delivery.headers, content=delivery.body)
        self.web_hook_events.append((int(delivery.headers["X-Discourse-Event-Id"]), answer.status_code))
        return answer

    def notify_by_web_hook(self, username: str, topic_title: str, client: Any = None, **kwargs: Any) -> Any:
        notification_id = self.notify(username, topic_title, **kwargs)
        [payload] = [n for n in self.notifications[username] if n["id"] == notification_id]
        return self.emit(self.web_hook_request("notification", payload), client)

    def notify(self, username: str, topic_title: str, *, kind: int = 1, by: str = "bob") -> int:
        notification_id = self.next_id
        self.next_id += 1
        self.notifications.setdefault(username, []).insert(
            0,
            {
                "id": notification_id,
                "user_id": self.user_id(username),
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

    # ------------------------------------------------------------ User API key flow

    @staticmethod
    def encrypt_payload(public_key_pem: str, payload: dict[str, Any]) -> str:
        """``Base64.encode64(public_key.public_encrypt(payload.to_json))``, as Discourse does."""
        public_key = serialization.load_pem_public_key(public_key_pem.encode())
        assert isinstance(public_key, rsa.RSAPublicKey)
        encrypted = public_key.encrypt(json.dumps(payload, separators=(",", ":")).encode(), padding.PKCS1v15())
        text = base64.b64encode(encrypted).decode()
        return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))

    def _redirect_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            return False
        for pattern in self.allowed_user_api_auth_redirects:
            regex = re.escape(pattern).replace("\\*", ".*")
            if re.fullmatch(regex, url, flags=re.IGNORECASE):
                return True
        return False

    def _params(self, values: Any) -> dict[str, str] | Response:
        params = {k: str(v) for k, v in values.items()}
        if any(not params.get(name) for name in self.REQUIRED):
            return JSONResponse({"errors": ["param is missing"], "error_type": "invalid_parameters"}, status_code=400)
        return params

    def _invalid(self, params: dict[str, str]) -> bool:
        if not set(params["scopes"].split(",")) <= self.allowed_scopes:
            return True
        try:
            key = serialization.load_pem_public_key(params["public_key"].encode())
        except ValueError:
            return True
        return not isinstance(key, rsa.RSAPublicKey)

    async def new_key(self, request: Request) -> Response:
        if request.method == "HEAD":
            return Response(headers={"Auth-Api-Version": str(self.AUTH_API_VERSION)})
        params = self._params(request.query_params)
        if isinstance(params, Response):
            return params
        if self._invalid(params):
            return HTMLResponse("<p>Oops! That page doesn’t exist or is private.</p>")  # @generic_error
        if self.sessions.get(request.cookies.get("_t", "")) is None:
            return RedirectResponse("/login", status_code=302)
        fields = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in params.items()
        )
        return HTMLResponse(
            f"<h1>{html.escape(params['application_name'])} would like access to your account</h1>"
            f'<form method="post" action="/user-api-key">{fields}'
            '<button type="submit" name="commit" value="Authorize">Authorize</button></form>'
        )

    async def create_key(self, request: Request) -> Response:
        user = self.sessions.get(request.cookies.get("_t", ""))
        if user is None:
            return JSONResponse({"errors": ["not logged in"], "error_type": "not_logged_in"}, status_code=403)
        params = self._params(await request.form())
        if isinstance(params, Response):
            return params
        redirect = params.get("auth_redirect")
        if redirect is not None and not self._redirect_allowed(redirect):
            return JSONResponse({"errors": ["invalid access"], "error_type": "invalid_access"}, status_code=403)
        if self._invalid(params):
            return JSONResponse({"errors": ["invalid access"], "error_type": "invalid_access"}, status_code=403)
        for old in [k for k, c in self.key_clients.items() if c == params["client_id"] and self.keys.get(k) == user]:
            self.keys.pop(old, None)
            self.key_clients.pop(old, None)
        key = secrets.token_hex(16)
        self.keys[key], self.key_clients[key] = user, params["client_id"]
        payload = self.encrypt_payload(
            params["public_key"], {"key": key, "nonce": params["nonce"], "push": False, "api": self.AUTH_API_VERSION}
        )
        if redirect is None:
            return JSONResponse({"payload": payload})
        parts = urlsplit(redirect)
        query = "&".join(q for q in (parts.query, f"payload={quote_plus(payload, safe='')}") if q)
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)

    async def revoke(self, request: Request) -> Response:
        key = request.headers.get("user-api-key", "")
        if key not in self.keys:
            return JSONResponse({"errors": ["not found"], "error_type": "not_found"}, status_code=404)
        self.keys.pop(key)
        self.key_clients.pop(key, None)
        self.revoked.append(key)
        return JSONResponse({"success": "OK"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/notifications.json", self.index, methods=["GET"]),
                Route("/notifications/mark-read.json", self.mark_read, methods=["PUT"]),
                Route("/user-api-key/new", self.new_key, methods=["GET", "HEAD"]),
                Route("/user-api-key", self.create_key, methods=["POST"]),
                Route("/user-api-key/revoke", self.revoke, methods=["POST"]),
            ]
        )
