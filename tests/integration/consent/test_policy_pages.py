"""Policy versions through HTTP: administrators publish, members review a material change at login."""

from __future__ import annotations

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.consent import policy
from portail.consent.models import PrivacyPolicyVersion
from tests.conftest import create_member, db_call, form_post, login
from tests.integration.consent.forms import submit


def _publish(session: Session, version: str, material: bool) -> None:
    policy.publish(session, version=version, material=material, summary_fr=f"Changements {version}", summary_en="x")


def test_an_administrator_publishes_a_version_from_the_page(client: TestClient, settings: Settings) -> None:
    create_member(settings, email="admin@example.org", name="Admin", is_admin=True)
    login(client, "admin@example.org")
    data = {"version": "2027-01", "kind": "material", "summary_fr": "Nouvel outil", "summary_en": "New tool"}
    response = submit(client, "/admin/privacy", "/admin/privacy", data)
    assert response.status_code == 303
    # A material version: the administrator, too, accepts it before any other page opens.
    assert client.get("/admin/privacy").headers["location"] == "/privacy/review?next=%2Fadmin%2Fprivacy"
    accepted = submit(client, "/privacy/review", "/privacy/review", {"accept": "yes", "next": "/admin/privacy"})
    assert accepted.headers["location"] == "/admin/privacy"
    page = client.get("/admin/privacy")
    assert "Version 2027-01" in page.text and "changement important" in page.text
    again = submit(client, "/admin/privacy", "/admin/privacy", data)
    assert again.status_code == 400 and "déjà publiée" in again.text
    empty = submit(client, "/admin/privacy", "/admin/privacy", {**data, "version": "2027-02", "summary_en": ""})
    assert empty.status_code == 400 and "anglais" in empty.text
    assert db_call(settings, lambda s: len(s.exec(select(PrivacyPolicyVersion)).all())) == 1


def test_the_policy_page_is_for_administrators_only(client: TestClient, settings: Settings, member: object) -> None:
    login(client)
    assert client.get("/admin/privacy").status_code == 403
    assert form_post(client, "/account/data", "/admin/privacy", {"version": "x"}).status_code == 403


def test_a_material_change_makes_the_member_review_it_at_login(
    client: TestClient, settings: Settings, member: object
) -> None:
    db_call(settings, lambda s: _publish(s, "2027-01", True))
    page = client.get("/login")
    from tests.conftest import PASSWORD, csrf_from

    response = client.post(
        "/login",
        data={
            "email": "alice@example.org",
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
            "next": "/account",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/privacy/review?next=%2Faccount"
    review = client.get(response.headers["location"])
    assert "Changements 2027-01" in review.text
    refused = submit(client, response.headers["location"], "/privacy/review", {"next": "/account"})
    assert refused.status_code == 400
    accepted = submit(client, response.headers["location"], "/privacy/review", {"next": "/account", "accept": "yes"})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/account"
    assert db_call(settings, lambda s: s.exec(select(Member.privacy_version)).one()) == "2027-01"


def test_a_minor_change_does_not_interrupt_the_login(client: TestClient, settings: Settings) -> None:
    create_member(settings, privacy_version=settings.privacy_policy_version)  # accepted at sign-up
    db_call(settings, lambda s: _publish(s, "2027-01", False))
    page = client.get("/login")
    from tests.conftest import PASSWORD, csrf_from

    response = client.post(
        "/login", data={"email": "alice@example.org", "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    assert response.headers["location"] == "/"


def test_the_history_of_versions_is_public(client: TestClient, settings: Settings) -> None:
    db_call(settings, lambda s: _publish(s, "2027-01", True))
    page = client.get("/privacy/history")
    assert page.status_code == 200 and "Changements 2027-01" in page.text


def test_sign_up_and_the_policy_page_use_the_published_version(client: TestClient, settings: Settings) -> None:
    db_call(settings, lambda s: _publish(s, "2027-05", False))
    assert "2027-05" in client.get("/privacy").text
    page = client.get("/signup")
    from tests.conftest import csrf_from

    data = {
        "name": "Béa",
        "email": "bea@example.org",
        "password": "un mot de passe solide",
        "accept_terms": "on",
        "accept_privacy": "on",
        "csrf_token": csrf_from(page.text),
    }
    assert client.post("/signup", data=data).status_code == 200
    assert db_call(settings, lambda s: s.exec(select(Member.privacy_version)).one()) == "2027-05"
