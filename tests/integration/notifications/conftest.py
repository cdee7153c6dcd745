"""Fixtures of the notification hub's HTTP tests: an instance with its OIDC client, access tokens."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette

from portail.accounts.models import Member
from portail.db import Database
from portail.federation.models import Instance
from portail.oidc import subjects, tokens
from portail.oidc.models import OAuthClient


@dataclass
class Pusher:
    instance: Instance
    client: OAuthClient

    def token(self, scope: str = "notifications:push") -> str:
        settings = tokens_settings[0]
        return tokens.issue_access_token(settings, self.client, sub=self.client.client_id, scope=scope).token


tokens_settings: list = []


def make_pusher(app: Starlette, slug: str = "passerelles", base_url: str = "https://passerelles.example") -> Pusher:
    db: Database = app.state.db
    tokens_settings[:] = [app.state.settings]
    with db.session() as session:
        client = OAuthClient(
            client_id=f"{slug}-client",
            name=slug,
            grant_types=["client_credentials"],
            scope="notifications:push",
            subject_type="pairwise",
            sector_identifier=base_url.split("//")[1],
        )
        instance = Instance(
            slug=slug,
            name=slug.capitalize(),
            software="passerelles",
            base_url=base_url,
            status="active",
            client_id=client.client_id,
        )
        session.add(client)
        session.add(instance)
        session.flush()
        return Pusher(instance, client)


def sub_of(app: Starlette, member: Member, pusher: Pusher) -> str:
    db: Database = app.state.db
    with db.session() as session:
        return subjects.subject_for(session, app.state.settings.secret_key, member, pusher.client)


@pytest.fixture
def pusher(app: Starlette) -> Pusher:
    return make_pusher(app)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real Redis: ``PORTAIL_TEST_REDIS_URL`` if set, else a private ``redis-server`` on a free port
    (so the test's pub/sub, rate-limit and leader keys never mix with another run's on 127.0.0.1:6379)."""
    configured = os.environ.get("PORTAIL_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server est requis / is needed (apt-get install redis-server) or set PORTAIL_TEST_REDIS_URL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen([binary, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
