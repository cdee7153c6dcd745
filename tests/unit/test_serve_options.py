"""``portail serve``'s uvicorn options: idle keep-alive connections outlive the clients' own."""

from __future__ import annotations

import inspect

import uvicorn

from portail.cli import build_parser, issuer_for_listener, uvicorn_options
from portail.config import Settings

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


def test_an_unconfigured_issuer_follows_the_listening_port() -> None:
    """``make run PORT=8080`` must not announce and sign for port 8000, where nobody listens."""
    default = Settings()
    assert issuer_for_listener(default, "127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert issuer_for_listener(default, "0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert issuer_for_listener(default, "::1", 8080) == "http://[::1]:8080"
    assert issuer_for_listener(default, "127.0.0.1", 8000) is None  # already right


def test_a_configured_issuer_is_never_replaced() -> None:
    configured = Settings(issuer="https://portail.example.org")
    assert issuer_for_listener(configured, "127.0.0.1", 8080) is None
