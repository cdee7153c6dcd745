"""Journey: Portail runs on PostgreSQL behind a load balancer; the network to the database is cut,
then restored. While it is cut, pages answer a 503 page in the member's language, the protocol and
API endpoints a 503 JSON error, both with ``Retry-After``; ``/healthz`` stays 200 and ``/readyz``
says the database check failed. Once restored, Portail serves again by itself.

The cut is real: ``portail serve`` reaches the machine's PostgreSQL through a small loopback TCP
forwarder that the test cuts (open connections dropped, new ones closed at once) and restores. The
machine's PostgreSQL itself is never stopped (other tests use it).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL
from tests.journeys.conftest import Deployment, sign_up


class Forwarder:
    """127.0.0.1:<port> → the PostgreSQL server, with a switch: ``cut()`` drops every open connection
    and closes new ones at once; ``restore()`` forwards again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.open = True
        self.stopped = False
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *ends: socket.socket) -> None:
        with self.lock:
            for end in ends:
                self.sockets.discard(end)
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def cut(self) -> None:
        self.open = False
        with self.lock:
            ends = list(self.sockets)
        self._drop(*ends)

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.stopped = True
        self.cut()
        self.listener.close()


@pytest.fixture
def postgres_behind_forwarder() -> Iterator[tuple[str, Forwarder]]:
    """A fresh, empty PostgreSQL database (what an operator's ``createdb`` gives; Portail creates its
    tables itself at ``serve``), reached through a forwarder; dropped afterwards."""
    admin_url = sa.make_url(PG_ADMIN_URL)
    name = f"portail_outage_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    forwarder = Forwarder((admin_url.host or "127.0.0.1", admin_url.port or 5432))
    url = admin_url.set(host="127.0.0.1", port=forwarder.port, database=name)
    try:
        yield url.render_as_string(hide_password=False), forwarder
    finally:
        forwarder.close()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _until(check: object, timeout: float = 30.0) -> None:
    """Wait (bounded) until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_a_database_outage_is_answered_503_with_retry_after_and_portail_recovers_by_itself(
    tmp_path: Path, postgres_behind_forwarder: tuple[str, Forwarder]
) -> None:
    database_url, forwarder = postgres_behind_forwarder
    deployment = Deployment(tmp_path, database_url=database_url)
    try:
        deployment.write_instances("")
        deployment.start()
        base = deployment.base_url
        member = sign_up(deployment, "marie@example.org", name="Marie Gagnon")
        member.login("marie@example.org")
        assert member.get("/").status_code == 200
        english = deployment.visitor(locale="en")

        forwarder.cut()

        page = member.get("/")
        assert page.status_code == 503, page.text[:300]
        assert page.headers["retry-after"].isdigit()
        assert page.headers["content-type"].startswith("text/html")
        assert "momentanément indisponible" in page.text
        login_page = english.get(
            "/login", headers={"Cookie": f"portail_session={member.http.cookies['portail_session']}"}
        )
        assert login_page.status_code == 503 and "temporarily unavailable" in login_page.text

        token = httpx.post(f"{base}/token", data={"grant_type": "client_credentials"}, auth=("outil", "secret"))
        assert token.status_code == 503 and token.headers["retry-after"].isdigit()
        assert token.json()["error"] == "temporarily_unavailable"
        api = member.get("/api/v1/me/notifications/unread")
        assert api.status_code == 503 and api.json()["error"] == "temporarily_unavailable"

        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and ready.headers["retry-after"].isdigit()
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["checks"]["database"].startswith("unreachable")

        forwarder.restore()

        _until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert member.get("/").status_code == 200
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"database": "ok", "migrations": "ok"}
        log = deployment.server_log.read_text(encoding="utf-8")
        assert "database unavailable, 503 for GET /" in log
    finally:
        deployment.close()
