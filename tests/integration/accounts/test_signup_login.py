"""Sign up, verify, log in and out, through HTTP against the real application."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlmodel import select
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from tests.conftest import PASSWORD, csrf_from, link_in, login, outbox


def _signup(client: TestClient, **fields: str) -> object:
    page = client.get("/signup")
    data = {
        "name": "Béatrice Gagnon",
        "email": "Beatrice@Example.ORG",
        "password": "un mot de passe solide",
        "accept_terms": "on",
        "accept_privacy": "on",
        "csrf_token": csrf_from(page.text),
    }
    data.update(fields)
    return client.post("/signup", data=data)


def _members(settings: Settings) -> list[Member]:
    handle = database.Database(settings)
    with handle.session() as session:
        rows = list(session.exec(select(Member)))
    handle.dispose()
    return rows


def test_signup_sends_a_verification_link_that_verifies_once(client: TestClient, settings: Settings) -> None:
    response = _signup(client)
    assert response.status_code == 200
    assert "Vérifiez vos courriels" in response.text
    [row] = _members(settings)
    assert row.email == "Beatrice@example.org"  # domain lower-cased, local part kept
    assert row.email_verified_at is None
    assert row.terms_version == settings.terms_version and row.terms_accepted_at is not None
    assert row.privacy_version == settings.privacy_policy_version
    [mail] = outbox(settings)
    assert mail["To"] == "Beatrice@example.org"
    link = link_in(mail)
    path = urlsplit(link)
    first = client.get(f"{path.path}?{path.query}")
    assert first.status_code == 303
    assert _members(settings)[0].email_verified_at is not None
    second = client.get(f"{path.path}?{path.query}")
    assert second.status_code == 200  # not a failure: the address is confirmed, and the page says so
    assert "Votre adresse courriel est déjà confirmée." in second.text and 'href="/login"' in second.text


def test_a_replaced_verification_link_says_so_and_how_to_get_a_new_one(client: TestClient, settings: Settings) -> None:
    _signup(client)
    login(client, "beatrice@example.org", "un mot de passe solide")
    home = client.get("/")
    client.post("/verify/resend", data={"csrf_token": csrf_from(home.text)})
    first, second = (urlsplit(link_in(mail)) for mail in outbox(settings))
    replaced = client.get(f"{first.path}?{first.query}")
    assert replaced.status_code == 400
    assert "Un lien plus récent vous a été envoyé" in replaced.text and "Recevoir un nouveau lien" in replaced.text
    assert client.get(f"{second.path}?{second.query}").status_code == 303
    # Once the address is confirmed, the old link says it is confirmed rather than failing.
    late = client.get(f"{first.path}?{first.query}")
    assert late.status_code == 200 and "Votre adresse courriel est déjà confirmée." in late.text


def test_unverified_member_can_only_resend_the_email(client: TestClient, settings: Settings) -> None:
    _signup(client)
    login(client, "beatrice@example.org", "un mot de passe solide")
    home = client.get("/")
    assert "Confirmez votre adresse courriel" in home.text
    resend = client.post("/verify/resend", data={"csrf_token": csrf_from(home.text)})
    assert resend.status_code == 303
    assert len(outbox(settings)) == 2


def test_signup_refuses_bad_input_without_creating_anything(client: TestClient, settings: Settings) -> None:
    cases = [
        ({"email": "not-an-address"}, "Adresse courriel invalide"),
        ({"password": "court"}, "au moins 10 caractères"),
        ({"password": "password123"}, "trop courant"),
        ({"password": "x" * 1025}, "au plus 1024 caractères"),
        ({"name": ""}, "Le nom est obligatoire"),
        ({"name": "n" * 201}, "au plus 200 caractères"),
        ({"accept_terms": ""}, "Acceptez les conditions"),
        ({"csrf_token": "forged"}, "formulaire a expiré"),
    ]
    for fields, message in cases:
        response = _signup(client, **fields)
        assert response.status_code == 400, fields
        assert message in response.text, (fields, response.text[:2000])
    assert _members(settings) == []
    assert outbox(settings) == []


def test_duplicate_signup_reveals_nothing_and_tells_the_owner(client: TestClient, settings: Settings) -> None:
    _signup(client)
    again = _signup(client, email="beatrice@EXAMPLE.org", name="Quelqu’un d’autre")
    assert again.status_code == 200
    assert "Vérifiez vos courriels" in again.text
    assert len(_members(settings)) == 1
    mails = outbox(settings)
    assert len(mails) == 2
    assert "tenté de créer un compte" in str(mails[1]["Subject"])
    assert mails[1]["To"] == "Beatrice@example.org"


def test_login_logout_and_session_row(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    home = client.get("/")
    assert "Bonjour Alice Tremblay" in home.text
    handle = database.Database(settings)
    with handle.session() as session:
        [row] = list(session.exec(select(LoginSession)))
        assert row.member_id == member.id and row.amr == "pwd" and row.ended_at is None
        assert row.user_agent
    page = client.get("/logout")
    assert page.status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert out.status_code == 303
    with handle.session() as session:
        [row] = list(session.exec(select(LoginSession)))
        assert row.ended_at is not None and row.end_reason == "logout"
    handle.dispose()
    assert "Bonjour" not in client.get("/").text


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient, member: Member) -> None:
    page = client.get("/login")
    token = csrf_from(page.text)
    wrong = client.post("/login", data={"email": member.email, "password": "nope nope nope", "csrf_token": token})
    unknown = client.post("/login", data={"email": "bob@example.org", "password": PASSWORD, "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "Adresse courriel ou mot de passe incorrect" in wrong.text
    assert "Adresse courriel ou mot de passe incorrect" in unknown.text


def test_repeated_failures_are_throttled(client: TestClient, member: Member, settings: Settings) -> None:
    token = csrf_from(client.get("/login").text)
    statuses = [
        client.post(
            "/login", data={"email": member.email, "password": "bad password!", "csrf_token": token}
        ).status_code
        for _ in range(settings.login_failures_before_delay + 1)
    ]
    assert statuses[:-1] == [401] * settings.login_failures_before_delay
    assert statuses[-1] == 429
    blocked = client.post("/login", data={"email": member.email, "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


def test_login_honours_only_local_next(client: TestClient, member: Member) -> None:
    page = client.get("/login")
    token = csrf_from(page.text)
    response = client.post(
        "/login",
        data={"email": member.email, "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_tampered_session_cookie_is_ignored(client: TestClient, member: Member) -> None:
    login(client)
    value = client.cookies["portail_session"]
    tampered = ("A" if value[1] != "A" else "B").join([value[:1], value[2:]])
    csrf = client.cookies["portail_csrf"]
    client.cookies.clear()
    client.cookies.set("portail_csrf", csrf)
    client.cookies.set("portail_session", tampered)
    assert "Bonjour" not in client.get("/").text


def test_login_without_csrf_gets_the_form_back(client: TestClient, member: Member) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": member.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "formulaire a expiré" in response.text
