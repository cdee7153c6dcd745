"""The web shell: security headers, cookies, error pages, bad input never gives a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from tests.conftest import PASSWORD, create_member, form_post, login, make_settings


def test_pages_carry_the_security_headers(client: TestClient) -> None:
    page = client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in page.headers  # plain http: no HSTS
    static = client.get("/static/portail.css")
    assert static.status_code == 200 and static.headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script_or_style(client: TestClient, member: Member) -> None:
    pages = [client.get(p).text for p in ("/", "/login", "/signup", "/password/forgot", "/terms", "/privacy", "/nope")]
    login(client)
    pages += [client.get(p).text for p in ("/", "/account", "/logout")]
    for html in pages:
        assert "<script>" not in html and "<style" not in html and " style=" not in html and "onclick" not in html


def test_cookies_are_httponly_lax_and_not_secure_over_http(client: TestClient, member: Member) -> None:
    client.get("/login")
    response = form_post(client, "/login", "/login", {"email": member.email, "password": PASSWORD})
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("portail_session="))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower() and "secure" not in session.lower()


@pytest.fixture
def https_client(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, sqlite_url, issuer="https://portail.example.org")
    with TestClient(
        create_app(settings, migrate=False), base_url="https://portail.example.org", follow_redirects=False
    ) as c:
        yield c, settings


def test_https_issuer_adds_hsts_and_secure_cookies(https_client) -> None:  # type: ignore[no-untyped-def]
    client, settings = https_client
    create_member(settings)
    page = client.get("/login")
    assert "max-age=" in page.headers["strict-transport-security"]
    csrf_cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("portail_csrf="))
    assert "secure" in csrf_cookie.lower()
    response = form_post(client, "/login", "/login", {"email": "alice@example.org", "password": PASSWORD})
    assert response.status_code == 303
    session = next(c for c in response.headers.get_list("set-cookie") if c.startswith("portail_session="))
    assert "; secure" in session.lower() and "httponly" in session.lower()
    lang = form_post(client, "/", "/language", {"locale": "en", "next": "/"})
    assert "; secure" in lang.headers["set-cookie"].lower()


def test_missing_page_gets_a_404_in_either_language(client: TestClient) -> None:
    french = client.get("/cette-page-nexiste-pas")
    assert french.status_code == 404
    assert "Cette page n’existe pas." in french.text and '<html lang="fr">' in french.text
    english = client.get("/nope", headers={"accept-language": "en"})
    assert english.status_code == 404
    assert "This page does not exist." in english.text and '<html lang="en">' in english.text
    api = client.get("/api/v1/nope")
    assert api.status_code == 404 and api.json()["error"] == "not_found"


def test_wrong_method_gets_a_405_page(client: TestClient) -> None:
    response = client.put("/login")
    assert response.status_code == 405 and "Cette méthode n’est pas permise ici." in response.text


@pytest.mark.parametrize("path", ["/login", "/signup", "/password/forgot", "/logout"])
def test_oversized_fields_get_a_4xx_not_a_500(client: TestClient, path: str) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    big = {"csrf_token": token, "email": "a" * 20_000 + "@example.org", "password": "p" * 20_000, "name": "n" * 20_000}
    response = client.post(path, data=big)
    assert response.status_code == 400
    assert "Un des champs est trop long." in response.text


def test_oversized_language_switch_is_refused_with_a_message(client: TestClient) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/language", data={"csrf_token": token, "locale": "en" * 10_000, "next": "/login"})
    assert response.status_code == 303 and "lang=" not in response.headers.get("set-cookie", "")
    assert "Un des champs est trop long." in client.get(response.headers["location"]).text


def test_a_huge_body_is_refused_with_413(client: TestClient) -> None:
    response = client.post(
        "/login", content=b"email=" + b"a" * 2_000_000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert "trop volumineuse" in response.text


def test_a_huge_chunked_body_is_refused(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"a" * 65536

    response = client.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


def test_garbage_forms_get_a_400(client: TestClient) -> None:
    multipart = client.post("/login", files={"file": ("x.txt", b"hello")})
    assert multipart.status_code == 400
    nonsense = client.post(
        "/login", content=b"\xff\xfe%%%", headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert nonsense.status_code == 400


def test_long_field_values_just_under_the_limit_are_refused_by_validation(
    client: TestClient, settings: Settings
) -> None:
    response = form_post(
        client,
        "/signup",
        "/signup",
        {
            "name": "n" * 9000,
            "email": "e" * 9000 + "@example.org",
            "password": "x",
            "accept_terms": "on",
            "accept_privacy": "on",
        },
    )
    assert response.status_code == 400
