"""An unverified member's page: re-send the link, correct a mistyped address (never someone else's)."""

from __future__ import annotations

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import create_member, db_call, form_post, login, outbox


def _email_of(settings: Settings, member_id: int) -> str:
    return db_call(settings, lambda s: s.get(Member, member_id).email)  # type: ignore[no-any-return]


def test_correcting_to_another_accounts_address_changes_and_sends_nothing(
    client: TestClient, settings: Settings
) -> None:
    create_member(settings, "owner@example.org", "Owner")
    newcomer = create_member(settings, "typo@exmaple.org", "Newcomer", verified=False)
    login(client, "typo@exmaple.org")
    answer = form_post(client, "/", "/verify/address", {"email": "Owner@example.org", "next": "/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/"  # the same answer as for a free address
    assert _email_of(settings, newcomer.id or 0) == "typo@exmaple.org"
    assert outbox(settings) == []


def test_an_invalid_address_is_reported_at_the_field(client: TestClient, settings: Settings) -> None:
    create_member(settings, "typo@exmaple.org", "Newcomer", verified=False)
    login(client, "typo@exmaple.org")
    answer = form_post(client, "/", "/verify/address", {"email": "pas une adresse", "next": "/"})
    assert answer.status_code == 400
    assert 'aria-invalid="true" aria-describedby="e-correct-email" autofocus' in answer.text


def test_re_sending_returns_to_the_page_the_member_wanted(client: TestClient, settings: Settings) -> None:
    create_member(settings, "typo@exmaple.org", "Newcomer", verified=False)
    login(client, "typo@exmaple.org")
    page = client.get("/notifications")
    assert page.status_code == 403 and 'name="next" value="/notifications"' in page.text
    answer = form_post(client, "/", "/verify/resend", {"next": "/notifications"})
    assert answer.status_code == 303 and answer.headers["location"] == "/notifications"
    assert [str(m["To"]) for m in outbox(settings)] == ["typo@exmaple.org"]


def test_a_verified_member_cannot_use_the_correction(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    answer = form_post(client, "/account", "/verify/address", {"email": "autre@example.org"})
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    assert db_call(settings, lambda s: [m.email for m in s.exec(select(Member))]) == ["alice@example.org"]
    assert outbox(settings) == []
