"""``portail serve``'s uvicorn options: idle keep-alive connections outlive the clients' own."""

from __future__ import annotations

import inspect

import uvicorn

from portail.cli import build_parser, uvicorn_options

# The longest idle time of the clients and proxies in front of Portail: undici (node fetch,
# openid-client) 4 s, httpx 5 s, nginx upstream keep-alive and cloud load balancers 60 s.
LONGEST_CLIENT_IDLE_SECONDS = 60


def test_serve_keeps_idle_connections_longer_than_clients_do() -> None:
    """A client reusing a connection the server closed a moment earlier gets "other side closed"
    mid-request; the server must never be the first to close an idle connection."""
    options = uvicorn_options(build_parser().parse_args(["serve"]))
    assert options["timeout_keep_alive"] > LONGEST_CLIENT_IDLE_SECONDS


def test_serve_options_are_all_understood_by_uvicorn() -> None:
    options = uvicorn_options(build_parser().parse_args(["serve", "--workers", "2", "--port", "8123"]))
    accepted = set(inspect.signature(uvicorn.Config).parameters)
    assert set(options) <= accepted
    assert (options["workers"], options["port"], options["http"], options["loop"]) == (2, 8123, "httptools", "uvloop")
