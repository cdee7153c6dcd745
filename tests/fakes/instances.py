"""Misbehaving and well-behaved "instances" behind one server, each under its own path prefix
(``/i/<name>``), for the aggregator's tests and the benchmark: feeds (Atom with ETag), and instances
that answer slowly, hang, fail with 500, ask to wait (429 with ``Retry-After: 120``), or answer
garbage. ``modes`` can be changed while running."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{name}</title><id>urn:{name}</id>
<updated>2026-11-20T10:00:00Z</updated>{entries}</feed>"""
ENTRY = """<entry><id>urn:{name}:{n}</id><title>Note {n} de {name}</title>
<link href="{base}/notes/{n}"/><updated>2026-11-20T10:00:00Z</updated>
<summary>&lt;b&gt;Résumé&lt;/b&gt; {n}</summary></entry>"""


@dataclass
class Instances:
    modes: dict[str, str] = field(default_factory=dict)  # name -> ok | hang | fail | busy | garbage | huge
    latency: dict[str, float] = field(default_factory=dict)  # name -> seconds
    entries: dict[str, int] = field(default_factory=dict)  # name -> number of feed entries
    hits: dict[str, int] = field(default_factory=dict)
    base_url: str = ""

    async def feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        mode = self.modes.get(name, "ok")
        await asyncio.sleep(self.latency.get(name, 0.0))
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "fail":
            return Response("Internal Server Error", status_code=500)
        if mode == "busy":
            return Response("Too Many Requests", status_code=429, headers={"Retry-After": "120"})
        if mode == "garbage":
            return Response(b"\x00\xff<<<not a feed", media_type="application/atom+xml")
        if mode == "huge":
            return Response(b"<feed>" + b"x" * 3_000_000, media_type="application/atom+xml")
        count = self.entries.get(name, 2)
        etag = f'"{name}-{count}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        origin = self.base_url or str(request.base_url).rstrip("/")  # the origin this request came to
        base = f"{origin}/i/{name}"
        entries = "".join(ENTRY.format(name=name, n=n, base=base) for n in range(count))
        return Response(
            ATOM.format(name=name, entries=entries), media_type="application/atom+xml", headers={"ETag": etag}
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/i/{name}/feed", self.feed, methods=["GET"])])
