"""Fixtures of the interop tests: Portail as a real HTTP server (uvicorn in a thread).

Peers such as Synapse or an OIDC client library must reach Portail over the network, so the app
runs under uvicorn on ``127.0.0.1:<free port>`` with issuer ``http://localhost:<port>`` (authlib and
Synapse accept plain http only for ``localhost``/``127.0.0.1`` with an explicit port).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from portail import db as database
from portail.app import create_app
from portail.config import Settings
from portail.oidc.clients import ClientSpec, create_client
from tests.conftest import make_settings
from tests.interop.synapse_harness import free_port


class LiveServer:
    """A running Portail: ``issuer`` (http://localhost:<port>), ``settings``, ``db`` and ``stop()``."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.issuer = settings.issuer
        self.app = create_app(settings, migrate=True)
        self.db: database.Database = self.app.state.db
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("Portail did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_portail_factory(tmp_path: Path, sqlite_url: str) -> Iterator[Callable[..., LiveServer]]:
    """Start Portail on SQLite with extra settings; every server started is stopped afterwards."""
    started: list[LiveServer] = []

    def start(**overrides: object) -> LiveServer:
        port = free_port()
        settings = make_settings(tmp_path, sqlite_url, issuer=f"http://localhost:{port}", **overrides)
        server = LiveServer(settings, port).start()
        started.append(server)
        with httpx.Client() as http:
            assert http.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration").status_code == 200
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def live_portail(live_portail_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_portail_factory()


def synapse_provider(portail: LiveServer, public_baseurl: str, *, backchannel: bool = False) -> dict[str, Any]:
    """Register Synapse (at ``public_baseurl``) as a client of ``portail`` and return the matching
    ``oidc_providers`` entry of Synapse's configuration, as the README tells an operator to write it."""
    with portail.db.session() as session:
        _client, secret = create_client(
            session,
            ClientSpec(
                name="Matrix En commun",
                client_id="synapse",
                redirect_uris=[f"{public_baseurl}_synapse/client/oidc/callback"],
                backchannel_logout_uri=(
                    f"{public_baseurl}_synapse/client/oidc/backchannel_logout" if backchannel else None
                ),
                subject_type="public",
            ),
        )
    provider: dict[str, Any] = {
        "idp_id": "portail",
        "idp_name": "Portail En commun",
        "issuer": portail.issuer,
        "client_id": "synapse",
        "client_secret": secret,
        "scopes": ["openid", "profile", "email"],
        "user_mapping_provider": {
            "config": {
                "localpart_template": "{{ user.preferred_username }}",
                "display_name_template": "{{ user.name }}",
                "email_template": "{{ user.email }}",
            }
        },
    }
    if backchannel:
        provider["backchannel_logout_enabled"] = True
    return provider
