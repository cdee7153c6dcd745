"""The outermost middleware: trusted reverse-proxy headers, request ids, one JSON log line and
the HTTP metrics of every request.

- Behind a reverse proxy, ``X-Forwarded-For`` / ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` are
  honoured only when the connecting peer is listed in ``forwarded_allow_ips`` (uvicorn's
  ``ProxyHeadersMiddleware`` rewrites the client address and scheme; the host is rewritten here).
- Every response carries ``X-Request-Id``. A client's own ``X-Request-Id`` is kept only when it
  came through a trusted proxy and looks like an id (letters, digits, ``._:-``, at most 128);
  otherwise Portail makes one.
- One line per request on the ``portail.request`` logger, in JSON: method, route template (never
  the raw path, never a query string), status, duration in ms, request id, client address.
  Nothing else of the request is logged: no header, cookie, body or query parameter.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from portail import metrics

log = logging.getLogger("portail.request")

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/authorize/resume/{interaction_id}``),
    or ``<unmatched>`` for a 404 outside every route: never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    return f"{template}/{{path}}" if isinstance(route, Mount) else template


class RequestLog:
    """Wraps the application: proxy headers first, then request id, metrics and the log line."""

    def __init__(self, app: ASGIApp, forwarded_allow_ips: str) -> None:
        self.proxy = ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips)  # type: ignore[arg-type]

    def trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        return client is not None and client[0] in self.proxy.trusted_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.proxy(scope, receive, send)  # type: ignore[arg-type]
            return
        started = time.perf_counter()
        trusted = self.trusted(scope)
        request_id = ""
        forwarded_host = b""
        for name, value in scope["headers"]:
            if trusted and name == REQUEST_ID_HEADER and REQUEST_ID_RE.fullmatch(value):
                request_id = value.decode("ascii")
            elif trusted and name == b"x-forwarded-host":
                forwarded_host = value.split(b",")[0].strip()
        if forwarded_host:
            scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"host"] + [(b"host", forwarded_host)]
        request_id = request_id or secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", []).append((REQUEST_ID_HEADER, request_id.encode("ascii")))
            await send(message)

        try:
            await self.proxy(scope, receive, send_with_id)  # type: ignore[arg-type]
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            route = route_template(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):  # the line is built only when someone reads it (serve --log-level)
                client = scope.get("client")
                log.info(
                    json.dumps(
                        {
                            "event": "request",
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "request_id": request_id,
                            "client": client[0] if client else None,
                        },
                        separators=(",", ":"),
                    )
                )


class _NoQueryString(logging.Filter):
    """uvicorn's optional access log (``serve --access-log``) without query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        args: Any = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging() -> None:
    """For ``portail serve`` workers: request lines (already JSON) go to stderr as they are, at the
    level of ``serve --log-level`` (``warning`` silences them), and uvicorn's access log, when asked
    for, drops query strings."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
        log.propagate = False
    logging.getLogger("uvicorn.access").addFilter(_NoQueryString())
