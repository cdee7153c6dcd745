"""Liveness and readiness for load balancers and orchestrators.

- ``GET /healthz``: the process answers (200, ``{"status": "ok"}``); touches nothing else, so a
  database outage never gets a live process restarted.
- ``GET /readyz``: this process can serve: the database answers and every migration is applied
  (``db.readiness``), and Redis answers ``PING`` when ``redis_url`` is set. 200 with every check
  ``"ok"``, else 503 with ``Retry-After`` and the body saying which check failed:
  ``{"status": "unavailable", "checks": {"database": "unreachable: …", "migrations": "unknown", …}}``.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portail.config import Settings
from portail.web.outage import RETRY_AFTER_SECONDS

CHECK_TIMEOUT_SECONDS = 5.0
NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


async def _redis(url: str) -> str:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        await client.ping()
        return "ok"
    except Exception as exc:  # every failure of the client means "not reachable"
        return f"unreachable: {type(exc).__name__}"
    finally:
        await client.aclose()


async def _database(request: Request) -> dict[str, str]:
    database = request.app.state.db  # ``portail.db.Database`` (web and db do not import each other)
    try:
        checks: dict[str, str] = await asyncio.wait_for(
            asyncio.to_thread(database.readiness), CHECK_TIMEOUT_SECONDS * 2
        )
    except TimeoutError:
        return {"database": "unreachable: timed out", "migrations": "unknown"}
    return checks


async def readyz(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    checks = await _database(request)
    if settings.redis_url:
        checks["redis"] = await _redis(settings.redis_url)
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ok", "checks": checks}, headers=NO_STORE)
    return JSONResponse(
        {"status": "unavailable", "checks": checks},
        status_code=503,
        headers={**NO_STORE, "Retry-After": str(RETRY_AFTER_SECONDS)},
    )


routes = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/readyz", readyz, methods=["GET"], name="readyz"),
]
