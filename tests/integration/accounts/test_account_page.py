"""My account: name, language, password, email and sessions."""

from __future__ import annotations

import re

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from tests.conftest import BASE_URL, PASSWORD, create_member, db_call, form_post, link_in, login, outbox

NEW_PASSWORD = "un tout nouveau mot de passe"


def _member(settings: Settings, email: str = "alice@example.org") -> Member:
    found = db_call(settings, lambda s: s.exec(select(Member).where(Member.email == email)).first())
    assert found is not None
    return found


def _post_account(client: TestClient, action: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return form_post(client, "/account", action, data)


def test_account_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


def test_unverified_member_cannot_use_the_account_page(client: TestClient, settings: Settings) -> None:
    create_member(settings, "bob@example.org", "Bob", verified=False)
    login(client, "bob@example.org")
    page = client.get("/account")  # the "confirm your address" page in place: no bounce to "/"
    assert page.status_code == 403 and "Confirmez votre adresse courriel" in page.text
    assert 'action="/verify/address"' in page.text and 'name="next" value="/account"' in page.text
    response = client.post("/account/profile", data={"name": "Robert", "locale": "en"})
    assert response.status_code == 403 and "Confirmez votre adresse courriel" in response.text
    assert _member(settings, "bob@example.org").name == "Bob"


def test_the_account_page_shows_the_username_the_tools_receive(
    client: TestClient, settings: Settings, member: Member
) -> None:
    """The ``preferred_username`` a tool receives (Synapse makes it the Matrix localpart) is on the page."""
    login(client)
    page = client.get("/account").text
    assert re.search(r'id="username">Nom d’utilisateur : <strong>alice</strong>', page), page[:2000]
    assert "@alice suivi du nom du serveur" in page


def test_changing_name_and_language(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    page = client.get("/account")
    assert page.status_code == 200 and "Mon compte" in page.text
    done = _post_account(client, "/account/profile", {"name": "  Alice   Gagnon ", "locale": "en"})
    assert done.status_code == 303 and done.headers["location"] == "/account"
    changed = _member(settings)
    assert (changed.name, changed.locale) == ("Alice Gagnon", "en")
    english = client.get("/account")
    assert "My account" in english.text and "Your profile is saved." in english.text
    assert english.headers["content-language"] == "en"
    refused = _post_account(client, "/account/profile", {"name": "", "locale": "fr-CA"})
    assert refused.status_code == 400 and "The name is required." in refused.text
    assert _member(settings).locale == "en"


def test_unknown_language_in_the_profile_is_ignored(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    _post_account(client, "/account/profile", {"name": "Alice", "locale": "xx"})
    assert _member(settings).locale == "fr-CA"


def test_password_change_asks_for_the_current_one_and_ends_other_sessions(
    client: TestClient, app, settings: Settings, member: Member
) -> None:  # type: ignore[no-untyped-def]
    other = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    login(other)
    login(client)
    data = {"current_password": "not my password", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    wrong = _post_account(client, "/account/password", data)
    assert wrong.status_code == 400 and "Le mot de passe actuel est incorrect." in wrong.text
    mismatch = _post_account(
        client, "/account/password", {**data, "current_password": PASSWORD, "new_password_confirm": "x"}
    )
    assert mismatch.status_code == 400 and "ne correspondent pas" in mismatch.text
    weak = _post_account(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "password123", "new_password_confirm": "password123"},
    )
    assert weak.status_code == 400 and "trop courant" in weak.text
    assert "Bonjour" in other.get("/").text
    done = _post_account(client, "/account/password", {**data, "current_password": PASSWORD})
    assert done.status_code == 303
    assert "Bonjour" in client.get("/").text  # this session stays
    assert "Bonjour" not in other.get("/").text  # the other one ended
    reasons = db_call(settings, lambda s: sorted(r.end_reason for r in s.exec(select(LoginSession))))
    assert reasons == ["", "password-changed"]
    fresh = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    login(fresh, member.email, NEW_PASSWORD)


def test_email_change_is_confirmed_by_the_new_address_and_told_to_the_old(
    client: TestClient, app, settings: Settings, member: Member
) -> None:  # type: ignore[no-untyped-def]
    login(client)
    asked = _post_account(client, "/account/email", {"email": "Alice.New@Example.org"})
    assert asked.status_code == 303
    [confirm] = outbox(settings)
    assert confirm["To"] == "Alice.New@example.org"
    link = link_in(confirm)
    assert link.startswith(f"{BASE_URL}/account/email/confirm?token=")
    assert _member(settings).email == "alice@example.org"
    # The old address keeps working until the new one is confirmed.
    before = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    login(before, "alice@example.org")
    confirmed = client.get(link)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/account"
    assert "Votre nouvelle adresse courriel est confirmée." in client.get("/account").text
    changed = db_call(settings, lambda s: s.get(Member, member.id))
    assert changed.email == "Alice.New@example.org" and changed.email_key == "alice.new@example.org"
    told = outbox(settings)[-1]
    assert told["To"] == "alice@example.org" and "a été changée" in str(told["Subject"])
    assert "Alice.New@example.org" in told.get_body(("plain",)).get_content()
    after = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    old = form_post(after, "/login", "/login", {"email": "alice@example.org", "password": PASSWORD})
    assert old.status_code == 401
    login(after, "alice.new@example.org")
    again = client.get(link)
    assert again.status_code == 400 and "Ce changement d’adresse est déjà fait" in again.text


def test_email_change_refusals(client: TestClient, settings: Settings, member: Member) -> None:
    create_member(settings, "bob@example.org", "Bob")
    login(client)
    same = _post_account(client, "/account/email", {"email": "ALICE@example.org"})
    assert same.status_code == 400 and "C’est déjà votre adresse." in same.text
    invalid = _post_account(client, "/account/email", {"email": "nope"})
    assert invalid.status_code == 400 and "Adresse courriel invalide." in invalid.text
    taken = _post_account(client, "/account/email", {"email": "Bob@example.org"})
    assert taken.status_code == 303  # same answer as a free address: nothing is revealed
    assert outbox(settings) == []


def test_email_change_link_refused_when_the_address_was_taken_meanwhile(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    _post_account(client, "/account/email", {"email": "carole@example.org"})
    link = link_in(outbox(settings)[-1])
    create_member(settings, "Carole@example.org", "Carole")
    refused = client.get(link)
    assert refused.status_code == 400 and "déjà utilisée par un autre compte" in refused.text
    assert _member(settings).email == "alice@example.org"


def test_ending_one_session_from_the_list(client: TestClient, app, settings: Settings, member: Member) -> None:  # type: ignore[no-untyped-def]
    other = TestClient(app, base_url=BASE_URL, follow_redirects=False, headers={"user-agent": "Other browser/1.0"})
    login(other)
    login(client)
    page = client.get("/account")
    assert "Other browser/1.0" in page.text
    sids = re.findall(r'action="/account/sessions/([^/"]+)/end"', page.text)
    assert len(sids) == 2
    rows = db_call(settings, lambda s: list(s.exec(select(LoginSession))))
    other_sid = next(r.sid for r in rows if r.user_agent == "Other browser/1.0")
    ended = _post_account(client, f"/account/sessions/{other_sid}/end", {})
    assert ended.status_code == 303 and ended.headers["location"] == "/account"
    assert "Bonjour" not in other.get("/").text
    assert "Bonjour" in client.get("/").text
    assert db_call(
        settings, lambda s: s.exec(select(LoginSession).where(LoginSession.sid == other_sid)).one()
    ).end_reason == ("ended-by-member")
    again = _post_account(client, f"/account/sessions/{other_sid}/end", {})
    assert again.status_code == 404


def test_ending_my_current_session_logs_me_out(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    [row] = db_call(settings, lambda s: list(s.exec(select(LoginSession))))
    done = _post_account(client, f"/account/sessions/{row.sid}/end", {})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert client.get("/account").status_code == 303


def test_cannot_end_someone_elses_session(client: TestClient, app, settings: Settings, member: Member) -> None:  # type: ignore[no-untyped-def]
    create_member(settings, "bob@example.org", "Bob")
    bob = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    login(bob, "bob@example.org")
    login(client)
    bob_sid = db_call(
        settings, lambda s: s.exec(select(LoginSession).where(LoginSession.member_id != member.id)).one()
    ).sid
    refused = _post_account(client, f"/account/sessions/{bob_sid}/end", {})
    assert refused.status_code == 404
    assert "Bonjour Bob" in bob.get("/").text
    forged = client.post(f"/account/sessions/{bob_sid}/end", data={"csrf_token": "forged"})
    assert forged.status_code == 303 and "Bonjour Bob" in bob.get("/").text


def test_sessions_are_listed_by_browser_and_system(client: TestClient, member: Member) -> None:
    client.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    login(client)
    page = client.get("/account")
    assert "Firefox sur Windows" in page.text
    assert "Gecko/20100101" in page.text  # the raw User-Agent, under "Détails du navigateur"
