"""``/healthz``, ``/readyz`` and the 503 answers while the database cannot be reached (in process;
the real outage, with ``portail serve`` on PostgreSQL, is ``tests/journeys/test_database_outage.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts.models import Member
from portail.app import create_app
from portail.web.outage import is_database_outage
from tests.conftest import BASE_URL, free_port, login, make_settings

DEAD_DATABASE = f"postgresql+psycopg://portail@127.0.0.1:{free_port()}/portail?connect_timeout=2"


@pytest.fixture
def cut(app: Starlette) -> Iterator[Callable[[], None]]:
    """Call it to swap the application's engine for one whose server does not listen: an outage."""
    db: database.Database = app.state.db
    working = db.engine

    def start() -> None:
        db.engine = sa.create_engine(DEAD_DATABASE)

    yield start
    if db.engine is not working:
        db.engine.dispose()
        db.engine = working


def test_healthz_says_the_process_lives(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_its_migrations(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_is_503_when_migrations_are_pending(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    app = create_app(settings, migrate=False)
    with TestClient(app, base_url=BASE_URL) as http:
        engine = app.state.db.engine
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM alembic_version WHERE version_num LIKE 'oidc%'"))
        response = http.get("/readyz")
    assert response.status_code == 503 and response.headers["retry-after"]
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["migrations"].startswith("pending: oidc_")


def test_readyz_checks_redis_when_it_is_configured(tmp_path: Path, sqlite_url: str, redis_url: str) -> None:
    for url, status in ((redis_url, 200), (f"redis://127.0.0.1:{free_port()}/0", 503)):
        settings = make_settings(tmp_path, sqlite_url, redis_url=url)
        with TestClient(create_app(settings, migrate=False), base_url=BASE_URL) as http:
            response = http.get("/readyz")
        assert response.status_code == status, response.text
        assert response.json()["checks"]["redis"] == "ok" if status == 200 else "unreachable"


def test_during_an_outage_pages_get_a_503_page_in_the_visitor_s_language(
    client: TestClient, member: Member, cut: Callable[[], None]
) -> None:
    login(client)
    cut()
    for locale, text in (("fr-CA", "momentanément indisponible"), ("en", "temporarily unavailable")):
        page = client.get("/login", headers={"Accept-Language": locale})
        assert page.status_code == 503 and page.headers["retry-after"].isdigit()
        assert page.headers["content-type"].startswith("text/html") and text in page.text


def test_during_an_outage_protocol_and_api_endpoints_answer_503_json(
    client: TestClient, member: Member, cut: Callable[[], None]
) -> None:
    login(client)
    cut()
    token = client.post("/token", data={"grant_type": "client_credentials"}, auth=("some-client", "secret"))
    assert token.status_code == 503 and token.headers["retry-after"].isdigit()
    assert token.json()["error"] == "temporarily_unavailable"
    api = client.get("/api/v1/me/notifications/unread")
    assert api.status_code == 503 and api.json()["error"] == "temporarily_unavailable"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unreachable")
    assert client.get("/healthz").status_code == 200


def test_an_outage_is_recognised_through_wrapping_and_groups() -> None:
    refused = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert is_database_outage(refused)
    wrapped = RuntimeError("while loading")
    wrapped.__cause__ = refused
    assert is_database_outage(wrapped)
    assert is_database_outage(ExceptionGroup("tasks", [ValueError("x"), refused]))
    assert not is_database_outage(ValueError("a bug"))
    assert not is_database_outage(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate")))
