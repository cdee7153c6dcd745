"""Outbound HTTP to instances: explicit timeouts, a cap on the bytes read, errors classified.

Every request an adapter makes goes through ``Fetcher.request``: the answer's body is read in
chunks and abandoned past ``settings.outbound_max_bytes`` (a garbage-answering or malicious instance
cannot exhaust memory), redirects are not followed, and every failure becomes a ``SourceError``
whose ``status`` tells the aggregator whether it counts against the instance's circuit breaker
(and, for 429 and 5xx answers, the ``Retry-After`` the instance asked for).
In the application the transport is the outbound guard (``portail.outbound.PinnedTransport``:
address checks, DNS pinning); redirects are never followed, so an instance cannot bounce Portail
elsewhere.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from dataclasses import dataclass
from typing import Any

import httpx

from portail.config import Settings
from portail.outbound import PinnedTransport, Refused


class SourceError(Exception):
    """A pull failed. ``status`` is ``unreachable`` (network, timeout, 5xx), ``error`` (garbage answer)
    or ``unauthorized`` (credential refused: the member must link again; does not trip the breaker)."""

    def __init__(self, status: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after  # seconds the instance asked to wait (Retry-After), if it did


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> int | None:
    """RFC 9110 §10.2.3 ``Retry-After``: delay-seconds or an HTTP-date; None if absent or unreadable.
    Capped at one day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), 86400)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(int(seconds), 0), 86400)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError("error", "answer is not JSON") from exc


class Fetcher:
    """One shared ``httpx.AsyncClient`` with Portail's limits."""

    def __init__(self, *, timeout: float, max_bytes: int, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.max_bytes = max_bytes
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": "Portail-EnCommun/1.0 (notifications)"},
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str | int] | None = None,
        json_body: Any = None,
        accept: tuple[int, ...] = (200,),
    ) -> Reply:
        try:
            async with self.client.stream(method, url, headers=headers, params=params, json=json_body) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError("error", f"answer larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
                reply = Reply(response.status_code, response.headers, b"".join(chunks))
        except httpx.TimeoutException as exc:
            raise SourceError("unreachable", "timed out") from exc
        except Refused as exc:  # the outbound guard (portail.outbound.PinnedTransport) said no
            raise SourceError("error", f"refused by the outbound guard: {exc.code}") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise SourceError("unreachable", f"connection failed: {type(exc).__name__}") from exc
        if reply.status in accept:
            return reply
        if reply.status in (401, 403):
            raise SourceError("unauthorized", f"credential refused ({reply.status})")
        if reply.status >= 500 or reply.status == 429:
            wait = retry_after_seconds(reply.headers.get("retry-after"))
            raise SourceError("unreachable", f"instance answered {reply.status}", retry_after=wait)
        raise SourceError("error", f"unexpected status {reply.status}")

    async def aclose(self) -> None:
        await self.client.aclose()


def guarded(settings: Settings) -> Fetcher:
    """A ``Fetcher`` whose every request goes through the outbound guard (``PinnedTransport``): what
    any code outside the hub's aggregator must use to reach an instance (hoster-supplied URLs)."""
    return Fetcher(
        timeout=settings.outbound_timeout_seconds,
        max_bytes=settings.outbound_max_bytes,
        transport=PinnedTransport(settings),
    )
