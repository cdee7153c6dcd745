"""Login details: hashes upgraded at the next login, disabled members refused, throttle cleared."""

from __future__ import annotations

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import LoginThrottle, Member
from portail.app import create_app
from portail.config import Settings
from tests.conftest import BASE_URL, PASSWORD, create_member, db_call, form_post, login


def test_a_hash_made_with_older_parameters_is_upgraded_at_login(settings: Settings) -> None:
    member = create_member(settings)
    stronger = settings.replace(argon2_time_cost=settings.argon2_time_cost + 1)
    with TestClient(create_app(stronger, migrate=False), base_url=BASE_URL, follow_redirects=False) as client:
        login(client)
    stored = db_call(settings, lambda s: s.get(Member, member.id)).password_hash
    assert stored != member.password_hash
    assert f"t={stronger.argon2_time_cost}," in stored
    with TestClient(create_app(stronger, migrate=False), base_url=BASE_URL, follow_redirects=False) as client:
        login(client)  # the upgraded hash still verifies


def test_a_disabled_member_cannot_log_in(client: TestClient, settings: Settings, member: Member) -> None:
    def disable(session) -> None:  # type: ignore[no-untyped-def]
        row = session.get(Member, member.id)
        row.disabled_at = row.created_at
        session.add(row)

    db_call(settings, disable)
    refused = form_post(client, "/login", "/login", {"email": member.email, "password": PASSWORD})
    assert refused.status_code == 401 and "Adresse courriel ou mot de passe incorrect." in refused.text


def test_a_successful_login_clears_the_account_failures(client: TestClient, settings: Settings, member: Member) -> None:
    form_post(client, "/login", "/login", {"email": member.email, "password": "wrong password!"})
    keys = lambda: sorted(r.key for r in db_call(settings, lambda s: list(s.exec(select(LoginThrottle)))))  # noqa: E731
    assert keys() == ["account:alice@example.org", "ip:testclient"]
    login(client)
    assert keys() == ["ip:testclient"]
