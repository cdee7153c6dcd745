"""Forgotten password: a single-use link valid one hour; the new password ends every session."""

from __future__ import annotations

import datetime as dt

from sqlmodel import col, select
from starlette.testclient import TestClient

from portail.accounts.models import LoginSession, Member, OneTimeLink
from portail.config import Settings
from portail.db import utcnow
from tests.conftest import BASE_URL, PASSWORD, db_call, form_post, link_in, login, outbox

NEW_PASSWORD = "un tout nouveau mot de passe"


def _ask_reset(client: TestClient, email: str) -> object:
    return form_post(client, "/password/forgot", "/password/forgot", {"email": email})


def _reset(client: TestClient, link: str, password: str = NEW_PASSWORD, confirm: str | None = None) -> object:
    return form_post(client, link, link, {"password": password, "password_confirm": confirm or password})


def test_reset_link_is_mailed_valid_one_hour_and_works_once(
    client: TestClient, settings: Settings, member: Member
) -> None:
    answer = _ask_reset(client, "ALICE@example.org")
    assert answer.status_code == 200
    assert "Vérifiez vos courriels" in answer.text
    [mail] = outbox(settings)
    assert mail["To"] == member.email and "Réinitialisez" in str(mail["Subject"])
    link = link_in(mail)
    assert link.startswith(f"{BASE_URL}/password/reset?token=")
    [row] = db_call(settings, lambda s: list(s.exec(select(OneTimeLink))))
    assert row.expires_at - row.created_at == dt.timedelta(minutes=60)
    assert client.get(link).status_code == 200
    done = _reset(client, link)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    login(client, member.email, NEW_PASSWORD)
    again = client.get(link)
    assert again.status_code == 400 and "Ce lien a déjà servi" in again.text
    assert "Votre mot de passe a déjà été changé" in again.text and 'href="/login"' in again.text


def test_asking_twice_says_the_first_link_was_replaced_not_used(
    client: TestClient, settings: Settings, member: Member
) -> None:
    _ask_reset(client, member.email)
    _ask_reset(client, member.email)
    first, second = (link_in(mail) for mail in outbox(settings))
    page = client.get(first)
    assert page.status_code == 400
    assert "Un lien plus récent vous a été envoyé" in page.text and "déjà servi" not in page.text
    assert 'href="/password/forgot"' in page.text  # the next step: ask again
    [old] = db_call(settings, lambda s: list(s.exec(select(OneTimeLink).where(OneTimeLink.end_reason != ""))))
    assert old.end_reason == "superseded"
    assert client.get(second).status_code == 200
    assert _reset(client, second).status_code == 303


def test_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client: TestClient, settings: Settings) -> None:
    answer = _ask_reset(client, "nobody@example.org")
    assert answer.status_code == 200 and "Vérifiez vos courriels" in answer.text
    assert outbox(settings) == []


def test_reset_ends_every_session_of_the_member(client: TestClient, app, settings: Settings, member: Member) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as other_browser:
        login(other_browser)
        assert "Bonjour" in other_browser.get("/").text
        _ask_reset(client, member.email)
        _reset(client, link_in(outbox(settings)[-1]))
        assert "Bonjour" not in other_browser.get("/").text
    live = db_call(settings, lambda s: list(s.exec(select(LoginSession).where(col(LoginSession.ended_at).is_(None)))))
    assert live == []
    ended = db_call(settings, lambda s: list(s.exec(select(LoginSession))))
    assert [row.end_reason for row in ended] == ["password-reset"]
    refused = form_post(client, "/login", "/login", {"email": member.email, "password": PASSWORD})
    assert refused.status_code == 401


def test_expired_reset_link_is_refused(client: TestClient, settings: Settings, member: Member) -> None:
    _ask_reset(client, member.email)
    link = link_in(outbox(settings)[-1])

    def expire(session) -> None:  # type: ignore[no-untyped-def]
        for row in session.exec(select(OneTimeLink)):
            row.expires_at = utcnow() - dt.timedelta(seconds=1)
            session.add(row)

    db_call(settings, expire)
    page = client.get(link)
    assert page.status_code == 400 and "expiré" in page.text
    assert "Demander un nouveau lien" in page.text and 'href="/password/forgot"' in page.text
    refused = client.post(link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": "x"})
    assert refused.status_code == 400


def test_reset_form_refuses_bad_passwords_and_keeps_the_link_usable(
    client: TestClient, settings: Settings, member: Member
) -> None:
    _ask_reset(client, member.email)
    link = link_in(outbox(settings)[-1])
    mismatch = _reset(client, link, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert mismatch.status_code == 400 and "ne correspondent pas" in mismatch.text
    short = _reset(client, link, "court")
    assert short.status_code == 400 and "au moins 10 caractères" in short.text
    forged = client.post(
        link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": "forged"}
    )
    assert forged.status_code == 400
    assert _reset(client, link).status_code == 303


def test_bad_or_missing_reset_token_gets_a_clear_page(client: TestClient) -> None:
    for url in ("/password/reset", "/password/reset?token=garbage", "/password/reset?token=" + "x" * 5000):
        page = client.get(url)
        assert page.status_code == 400, url
        assert "Ce lien est invalide" in page.text and 'href="/password/forgot"' in page.text


def test_forgot_form_refuses_an_invalid_address(client: TestClient, settings: Settings) -> None:
    answer = _ask_reset(client, "not an address")
    assert answer.status_code == 400 and "Adresse courriel invalide" in answer.text
    assert outbox(settings) == []
