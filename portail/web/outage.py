"""While the database cannot be reached, every request is answered 503 with ``Retry-After``
(RFC 9110 §15.6.4, §10.2.3) instead of a 500: an HTML page in the visitor's language for pages, a
JSON error (``temporarily_unavailable``) for the protocol endpoints and ``/api/``. Load balancers
and clients retry; Portail recovers by itself when the database is back (pooled connections are
checked before use). One warning line is logged per refused request, never a traceback.

``DatabaseOutage`` is a pure ASGI middleware placed around the session loader and the routes, so
that a failure while loading the member's session is caught too. A response that had already
started cannot be replaced: the error then goes on to the server error handler.
"""

from __future__ import annotations

import logging
import sqlite3

from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portail.web import error_page

log = logging.getLogger("portail.web")

RETRY_AFTER_SECONDS = 5
_UNREACHABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # connection refused or lost, server shutting down, SQLite locked or I/O error
    sa_exc.InterfaceError,  # the driver's connection is closed
    sa_exc.TimeoutError,  # no pooled connection came free in time
    sqlite3.OperationalError,
)
try:  # raw driver errors (LISTEN/NOTIFY and other direct uses of the connection)
    import psycopg

    _UNREACHABLE += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - PostgreSQL support not installed
    pass


def is_database_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it, or one of a group) says the database cannot be reached."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, BaseExceptionGroup):
            return any(is_database_outage(inner) for inner in current.exceptions)
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current, seen = current.__cause__, seen + 1
    return False


def outage_reason(exc: BaseException) -> str:
    """The first line of the driver's message, for the one-line log."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def unavailable(request: Request) -> Response:
    """The 503 answer, in the endpoint's format (``error_page``), with ``Retry-After``."""
    response = error_page(request, 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


class DatabaseOutage:
    """Turns a database outage met while answering into a 503 (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started or not is_database_outage(exc):
                raise
            request = Request(scope)
            log.warning("database unavailable, 503 for %s %s: %s", request.method, request.url.path, outage_reason(exc))
            await unavailable(request)(scope, receive, send)
