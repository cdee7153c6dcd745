"""Roles that administer others must enrol a second factor before using their pages (setting
``mfa_required_for_admins``, on by default); sensitive changes ask for a fresh authentication."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import LoginSession, Member
from portail.app import create_app
from portail.config import Settings
from tests.conftest import BASE_URL, PASSWORD, create_member, csrf_from, db_call, login, make_settings
from tests.federation_factories import add_hoster
from tests.second_factor import code_at, enrol_totp, password_step, post, second_step


@pytest.fixture
def settings(tmp_path, database_url: str) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, database_url, mfa_required_for_admins=True)  # the production default


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, migrate=False), base_url=BASE_URL, follow_redirects=False) as http:
        yield http


def test_the_setting_is_on_by_default() -> None:
    assert Settings().mfa_required_for_admins is True


def test_an_administrator_must_enrol_before_the_admin_pages(client: TestClient, settings: Settings) -> None:
    create_member(settings, email="admin@example.org", is_admin=True)
    login(client, "admin@example.org")
    blocked = client.get("/admin/oidc/clients")
    assert blocked.status_code == 303
    assert blocked.headers["location"] == "/account/security?next=%2Fadmin%2Foidc%2Fclients"
    notice = client.get(blocked.headers["location"])
    assert "avant d’utiliser les pages d’administration" in notice.text
    _secret, codes, page = enrol_totp(client, "/admin/oidc/clients")
    assert len(codes) == 10 and 'href="/admin/oidc/clients"' in page.text
    assert client.get("/admin/oidc/clients").status_code == 200


def test_privacy_officers_and_hoster_admins_are_held_too_members_are_not(
    client: TestClient, settings: Settings
) -> None:
    officer = create_member(settings, email="officer@example.org")

    def give_role(db: Session) -> None:
        row = db.get(Member, officer.id)
        assert row is not None
        row.roles = "privacy-officer"
        db.add(row)

    db_call(settings, give_role)
    login(client, "officer@example.org")
    assert client.get("/privacy-officer").headers["location"].startswith("/account/security?next=")

    create_member(settings, email="hoster@example.org")
    add_hoster(settings, "hebergeur", admin_email="hoster@example.org")
    hoster = TestClient(client.app, base_url=BASE_URL, follow_redirects=False)
    login(hoster, "hoster@example.org")
    assert hoster.get("/federation/hosters/hebergeur/people").headers["location"].startswith("/account/security")

    create_member(settings, email="member@example.org")
    plain = TestClient(client.app, base_url=BASE_URL, follow_redirects=False)
    login(plain, "member@example.org")
    assert plain.get("/admin/oidc/clients").status_code == 403  # the page decides; no second factor asked


def test_an_enrolled_administrator_on_a_password_only_session_gets_the_second_step(
    client: TestClient, settings: Settings
) -> None:
    create_member(settings, email="admin@example.org", is_admin=True)
    login(client, "admin@example.org")  # before enrolling: a password-only session
    other = TestClient(client.app, base_url=BASE_URL, follow_redirects=False)
    login(other, "admin@example.org")
    secret, _codes, _page = enrol_totp(other)
    step = client.get("/admin/oidc/clients")
    assert step.headers["location"] == "/login/second-step?next=%2Fadmin%2Foidc%2Fclients"
    passed = second_step(client, code_at(secret, 1), "/admin/oidc/clients")
    assert passed.headers["location"] == "/admin/oidc/clients"
    assert client.get("/admin/oidc/clients").status_code == 200


def test_the_last_factor_of_an_administrator_cannot_be_removed(client: TestClient, settings: Settings) -> None:
    create_member(settings, email="admin@example.org", is_admin=True)
    login(client, "admin@example.org")
    enrol_totp(client)
    refused = post(client, "/account/security/totp-remove")
    assert refused.status_code == 400 and "ajoutez une autre méthode avant de retirer" in refused.text


def test_with_the_setting_off_administrators_pass(tmp_path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    relaxed = make_settings(tmp_path, database_url, mfa_required_for_admins=False)
    create_member(relaxed, email="admin@example.org", is_admin=True)
    with TestClient(create_app(relaxed, migrate=False), base_url=BASE_URL, follow_redirects=False) as http:
        login(http, "admin@example.org")
        assert http.get("/admin/oidc/clients").status_code == 200


def age_sessions(settings: Settings, minutes: int) -> None:
    def age(db: Session) -> None:
        for row in db.exec(select(LoginSession)):
            row.auth_time = row.auth_time - dt.timedelta(minutes=minutes)
            db.add(row)

    db_call(settings, age)


def test_sensitive_changes_ask_for_a_fresh_authentication(client: TestClient, settings: Settings) -> None:
    create_member(settings)
    login(client)
    secret, _codes, _page = enrol_totp(client)
    age_sessions(settings, settings.reauth_minutes + 1)

    for action in ("/account/security/totp-remove", "/account/security/recovery-codes"):
        stale = post(client, action)
        assert stale.status_code == 303 and stale.headers["location"].startswith("/account/reauth?next=")
    email = post(client, "/account/email", {"email": "new@example.org"}, page="/account")
    assert email.headers["location"].startswith("/account/reauth?next=")

    page = client.get("/account/reauth?next=/account/security")
    wrong = client.post(
        "/account/reauth", data={"password": "not it", "next": "/account/security", "csrf_token": csrf_from(page.text)}
    )
    assert wrong.status_code == 401
    right = client.post(
        "/account/reauth", data={"password": PASSWORD, "next": "/account/security", "csrf_token": csrf_from(page.text)}
    )
    assert right.headers["location"] == "/account/security"
    assert post(client, "/account/security/totp-remove").status_code == 303
    assert "Configurer une application" in client.get("/account/security").text
    assert secret  # the app is gone: a later login needs no second step
    fresh = TestClient(client.app, base_url=BASE_URL, follow_redirects=False)
    assert password_step(fresh).headers["location"] == "/"
