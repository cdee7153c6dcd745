"""Live updates end to end over real HTTP: the application served by uvicorn on a free port, a member's
``GET /notifications/stream`` (Server-Sent Events) read with httpx streaming, a notification pushed
through ``POST /api/v1/notifications``, and the event arriving on the open stream.

Across "workers": two application instances (two uvicorn servers, each with its own hub and broker,
as two ``portail serve --workers`` processes would have) share one database; the push is handled by
app A and the stream is open on app B, so the wake-up must cross through PostgreSQL
``LISTEN``/``NOTIFY``, or through Redis pub/sub when ``redis_url`` is set (a real ``redis-server``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlmodel import select
from starlette.applications import Starlette

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from tests.conftest import PASSWORD, _truncate_postgres, create_member, csrf_from, free_port, make_settings
from tests.integration.notifications.conftest import make_pusher, sub_of

EMAIL = "alice@example.org"


class Served:
    """One application instance under uvicorn in a thread, at ``url``."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.app: Starlette = create_app(settings, migrate=False)
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the test server did not start on port {port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def serve() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        served.stop()


def _logged_in(url: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=httpx.Timeout(30.0))
    page = http.get("/login")
    answer = http.post(
        "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_from(page.text), "next": "/"}
    )
    assert answer.status_code == 303, answer.text[:500]
    return http


def _push_and_read_event(pushing: Served, streaming: Served) -> dict[str, object]:
    """Open the member's stream on ``streaming``, push one notification to ``pushing``, return the event."""
    pusher = make_pusher(pushing.app)
    member_sub = sub_of(pushing.app, _member(pushing.app), pusher)
    member = _logged_in(streaming.url)
    with contextlib.closing(member), member.stream("GET", "/notifications/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 5000"  # sent once the stream is subscribed (listener ready)
        item = {"id": "n-live-1", "sub": member_sub, "title": "Nouvelle réponse", "body": "Marie a répondu"}
        pushed = httpx.post(
            f"{pushing.url}/api/v1/notifications",
            json={"notifications": [item]},
            headers={"Authorization": f"Bearer {pusher.token()}"},
            timeout=30,
        )
        assert pushed.json()["accepted"] == 1, pushed.text
        event: dict[str, str] = {}
        for line in lines:  # heartbeats (": keep-alive") are skipped; the read timeout bounds the wait
            if line.startswith(":") or not line:
                if "data" in event:
                    break
                continue
            field, _, value = line.partition(": ")
            event[field] = value
        assert event.get("event") == "notification", event
        data: dict[str, object] = json.loads(event["data"])
        assert event["id"] == str(data["id"])
        return data


def _member(app: Starlette) -> Member:
    with app.state.db.session() as session:
        return session.exec(select(Member).where(Member.email == EMAIL)).one()


def _settings(tmp_path: Path, database_url: str, port: int, **overrides: object) -> Settings:
    return make_settings(tmp_path, database_url, issuer=f"http://127.0.0.1:{port}", **overrides)


def test_a_pushed_notification_arrives_on_the_member_s_open_event_stream(
    tmp_path: Path, sqlite_url: str, serve: list[Served]
) -> None:
    port = free_port()
    settings = _settings(tmp_path, sqlite_url, port)
    create_member(settings, EMAIL)
    app = Served(settings, port)
    serve.append(app)
    data = _push_and_read_event(app, app)
    assert data["title"] == "Nouvelle réponse" and data["body"] == "Marie a répondu"
    assert data["tool"] == "Passerelles" and data["unread"] == 1


def test_an_event_stream_without_a_session_is_refused(tmp_path: Path, sqlite_url: str, serve: list[Served]) -> None:
    port = free_port()
    app = Served(_settings(tmp_path, sqlite_url, port), port)
    serve.append(app)
    assert httpx.get(f"{app.url}/notifications/stream", timeout=10).status_code == 401


def _two_workers(settings: Settings, port_a: int, serve: list[Served]) -> tuple[Served, Served]:
    a = Served(settings, port_a)
    serve.append(a)
    b = Served(settings, free_port())
    serve.append(b)
    return a, b


@pytest.mark.postgres
def test_postgresql_notify_carries_a_push_on_worker_a_to_a_stream_on_worker_b(
    tmp_path: Path, postgres_url: str, serve: list[Served]
) -> None:
    _truncate_postgres(postgres_url)
    port_a = free_port()
    settings = _settings(tmp_path, postgres_url, port_a)
    create_member(settings, EMAIL)
    a, b = _two_workers(settings, port_a, serve)
    assert a.app.state.notifications.broker.backend == b.app.state.notifications.broker.backend == "postgresql"
    data = _push_and_read_event(a, b)
    assert data["title"] == "Nouvelle réponse" and data["unread"] == 1


@pytest.mark.postgres
def test_redis_pub_sub_carries_a_push_on_worker_a_to_a_stream_on_worker_b(
    tmp_path: Path, postgres_url: str, redis_url: str, serve: list[Served]
) -> None:
    _truncate_postgres(postgres_url)
    port_a = free_port()
    settings = _settings(tmp_path, postgres_url, port_a, redis_url=redis_url)
    create_member(settings, EMAIL)
    a, b = _two_workers(settings, port_a, serve)
    assert a.app.state.notifications.broker.backend == b.app.state.notifications.broker.backend == "redis"
    data = _push_and_read_event(a, b)
    assert data["title"] == "Nouvelle réponse" and data["unread"] == 1
