"""Languages: fr-CA by default, English for visitors who ask (Accept-Language, the header buttons)
and for members who choose it."""

from __future__ import annotations

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import db_call, form_post, login


def test_visitors_get_french_by_default(client: TestClient) -> None:
    page = client.get("/login")
    assert '<html lang="fr">' in page.text and "Se connecter à En commun" in page.text
    assert page.headers["content-language"] == "fr-CA"


def test_visitors_get_their_accept_language(client: TestClient) -> None:
    english = client.get("/login", headers={"accept-language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in english.text and "Log in to En commun" in english.text
    assert english.headers["content-language"] == "en"
    french = client.get("/login", headers={"accept-language": "de-DE,fr;q=0.8,en;q=0.5"})
    assert "Se connecter à En commun" in french.text


def test_the_language_button_sets_a_cookie_that_beats_accept_language(client: TestClient) -> None:
    switched = form_post(
        client, "/login?next=/somewhere", "/language", {"locale": "en", "next": "/login?next=/somewhere"}
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/login?next=/somewhere"
    assert "lang=en" in switched.headers["set-cookie"] and "httponly" in switched.headers["set-cookie"].lower()
    page = client.get("/login", headers={"accept-language": "fr-CA"})
    assert "Log in to En commun" in page.text
    back = form_post(client, "/login", "/language", {"locale": "fr-CA", "next": "/login"})
    assert back.status_code == 303
    assert "Se connecter à En commun" in client.get("/login").text


def test_the_language_form_keeps_the_page_and_its_query(client: TestClient) -> None:
    page = client.get("/login?next=%2Fauthorize%2Fresume%2Fabc")
    assert 'name="next" value="/login?next=%2Fauthorize%2Fresume%2Fabc"' in page.text


def test_language_switch_ignores_foreign_next_and_unknown_locales(client: TestClient) -> None:
    switched = form_post(client, "/login", "/language", {"locale": "klingon", "next": "https://evil.example/"})
    assert switched.headers["location"] == "/"
    assert "lang=fr-CA" in switched.headers["set-cookie"]


def test_language_switch_without_csrf_is_refused(client: TestClient) -> None:
    refused = client.post("/language", data={"locale": "en", "next": "/login"})
    assert refused.status_code == 303 and "lang=" not in refused.headers.get("set-cookie", "")


def test_a_member_choice_is_stored_and_wins_over_the_browser(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    form_post(client, "/", "/language", {"locale": "en", "next": "/"})
    stored = db_call(settings, lambda s: s.exec(select(Member).where(Member.id == member.id)).one())
    assert stored.locale == "en"
    client.cookies.delete("lang")
    home = client.get("/", headers={"accept-language": "fr-CA"})
    assert "Hello Alice Tremblay" in home.text


def test_member_language_applies_to_mail(client: TestClient, settings: Settings, member: Member) -> None:
    from tests.conftest import outbox

    login(client)
    form_post(client, "/", "/language", {"locale": "en", "next": "/"})
    form_post(client, "/account", "/account/email", {"email": "alice2@example.org"})
    [mail] = outbox(settings)
    assert mail["Subject"] == "Confirm your new email address"
    assert mail["Content-Language"] == "en"
    assert "To confirm your new email address" in mail.get_body(("plain",)).get_content()
