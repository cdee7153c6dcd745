"""Law 25 seams of the notification hub: while a member has a changed privacy policy to review,
the programs that read their notifications (``/api/v1/me/notifications…``, the embedded menu's
``/widget/menu.json``) get a clear 403 ``action_required`` naming the page to open — never a
redirect to a form they cannot show, and never the data — and everything works again once the
member has accepted."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from portail.config import Settings
from portail.consent import policy
from portail.web import translator
from tests import seed
from tests.conftest import create_member, csrf_from, db_call, login

TOOL = "https://nuage.encommun.example"
REVIEW = "http://localhost:8000/privacy/review?next=%2F"


@pytest.fixture
def reviewing(client: TestClient, settings: Settings) -> TestClient:
    """A logged-in member, then a material change of the privacy policy published."""
    create_member(settings, privacy_version="2026-11")
    db_call(settings, lambda s: seed.instance(s, "nuage", "Nuage commun", base_url=TOOL + "/"))
    login(client)
    db_call(
        settings,
        lambda s: policy.publish(s, version="2027-01", material=True, summary_fr="Changements", summary_en="Changes"),
    )
    return client


def _refused(response: object) -> None:
    assert response.status_code == 403  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"] == "action_required"
    assert "privacy policy" in body["error_description"]
    assert body["action_url"] == REVIEW
    assert "notifications" not in body and "tools" not in body


def test_the_inbox_api_answers_action_required_during_a_policy_review(reviewing: TestClient) -> None:
    for path in ("/api/v1/me/notifications", "/api/v1/me/notifications/unread", "/api/v1/me/notifications/preferences"):
        _refused(reviewing.get(path))
    _refused(reviewing.post("/api/v1/me/notifications/read-all", json={}))
    _refused(reviewing.post("/api/v1/me/notifications/1/dismiss", json={}))


def test_the_menu_json_answers_action_required_readable_by_the_tool(reviewing: TestClient) -> None:
    response = reviewing.get("/widget/menu.json", headers={"Origin": TOOL})
    _refused(response)
    assert response.headers["access-control-allow-origin"] == TOOL  # the tool's script can read why
    assert response.json()["labels"]["review_link"] == "Lire la politique"
    assert translator("en").gettext("Lire la politique") == "Read the policy"  # the member's language decides


def test_accepting_the_policy_opens_the_inbox_api_and_the_menu_again(reviewing: TestClient) -> None:
    page = reviewing.get("/privacy/review?next=%2F")
    accepted = reviewing.post(
        "/privacy/review", data={"accept": "yes", "next": "/", "csrf_token": csrf_from(page.text)}
    )
    assert accepted.status_code == 303
    assert reviewing.get("/api/v1/me/notifications/unread").json() == {"unread": 0}
    assert reviewing.get("/widget/menu.json", headers={"Origin": TOOL}).status_code == 200


def test_without_a_session_the_inbox_api_still_answers_401(client: TestClient) -> None:
    response = client.get("/api/v1/me/notifications")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
