"""The navigation menu's endpoints: the public script, and the JSON that only registered, active
instances' origins may read (CORS with credentials, exact origin match, ``Vary: Origin``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from tests import seed
from tests.conftest import login

TOOL = "https://nuage.encommun.example"


@pytest.fixture
def instances(settings: Settings, member: Member) -> Iterator[None]:
    db = Database(settings)
    with db.session() as s:
        seed.instance(s, "nuage", "Nuage commun", base_url=TOOL + "/")
        seed.instance(s, "forum", "Forum", software="discourse", base_url="https://forum.encommun.example")
        seed.instance(s, "vieux", "Vieux", base_url="https://vieux.encommun.example", status="suspended")
    db.dispose()
    yield


def test_the_script_is_public_cacheable_and_loadable_cross_origin(client: TestClient) -> None:
    response = client.get("/widget/menu.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "attachShadow" in response.text
    assert "set-cookie" not in response.headers


def test_an_active_instance_origin_reads_the_member_menu(client: TestClient, instances: None) -> None:
    login(client)
    response = client.get("/widget/menu.json", headers={"Origin": TOOL})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == TOOL
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert [t["name"] for t in body["tools"]] == ["Forum", "Nuage commun"]
    assert [t["current"] for t in body["tools"]] == [False, True]
    assert body["tools"][0]["url"] == "https://forum.encommun.example/auth/oidc"
    assert body["tools"][0]["icon"] == "http://localhost:8000/static/icons/discourse.svg"
    assert body["unread"] == 0
    assert body["notifications_url"] == "http://localhost:8000/notifications"
    assert body["member"] == {"name": "Alice Tremblay"}
    assert body["labels"]["button"] == "Mes outils En commun"


def test_a_foreign_or_suspended_origin_is_refused_without_cors_headers(client: TestClient, instances: None) -> None:
    login(client)
    for origin in ("https://evil.example", "https://vieux.encommun.example", "null", TOOL + ".evil.example"):
        response = client.get("/widget/menu.json", headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert "access-control-allow-origin" not in response.headers
        assert response.json()["error"] == "origin_not_allowed"
        assert "Alice" not in response.text


def test_without_a_session_the_menu_says_where_to_log_in(client: TestClient, instances: None) -> None:
    response = client.get("/widget/menu.json", headers={"Origin": TOOL, "Accept-Language": "en"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == TOOL
    assert response.json()["login_url"] == "http://localhost:8000/login"
    assert response.json()["labels"]["button"] == "My En commun tools"


def test_a_preflight_from_an_allowed_origin_is_answered(client: TestClient, instances: None) -> None:
    response = client.options("/widget/menu.json", headers={"Origin": TOOL, "Access-Control-Request-Method": "GET"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == TOOL
    refused = client.options("/widget/menu.json", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403


def test_portail_itself_reads_the_menu_without_cors(client: TestClient, instances: None) -> None:
    login(client)
    response = client.get("/widget/menu.json")
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
