"""Authenticator app (RFC 6238) and recovery codes, through the HTML forms: codes are computed with
pyotp from the secret the page shows."""

from __future__ import annotations

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import login, mail_text, outbox
from tests.second_factor import (
    CODE_RE,
    SECRET_RE,
    code_at,
    enrol_totp,
    enrol_totp_with_code,
    password_step,
    post,
    second_step,
)


def test_enrolment_shows_a_qr_code_and_ten_recovery_codes_once(client: TestClient, member: Member) -> None:
    login(client)
    secret, codes, _page = enrol_totp(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    page = client.get("/account/security")
    assert "Codes inutilisés : 10 sur 10." in page.text
    assert not any(code in page.text for code in codes) and secret not in page.text


def test_a_wrong_code_does_not_confirm_enrolment(client: TestClient, member: Member) -> None:
    login(client)
    post(client, "/account/security/totp-start")
    page = client.get("/account/security")
    shown = SECRET_RE.search(page.text)
    assert shown
    wrong = "000000" if code_at(shown.group(1).replace(" ", "")) != "000000" else "111111"
    refused = post(client, "/account/security/totp-confirm", {"code": wrong})
    assert refused.status_code == 400 and "Ce code est incorrect ou expiré" in refused.text
    assert "Configurer une application" not in refused.text and "Clé :" in refused.text  # still half-done
    fresh = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    assert password_step(fresh).headers["location"] == "/"  # nothing enrolled: no second step


def test_login_asks_for_the_code_and_refuses_wrong_replayed_and_expired_ones(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    secret, _codes, _page, used = enrol_totp_with_code(client)
    fresh = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    first = password_step(fresh, next_url="/account")
    assert first.status_code == 303 and first.headers["location"].startswith("/login/second-step")
    assert "portail_session" not in first.cookies
    assert fresh.get("/account").status_code == 303  # not logged in yet

    expired = code_at(secret, -3)
    assert second_step(fresh, expired, "/account").status_code == 401
    refused = second_step(fresh, used, "/account")  # the enrolment's code, replayed
    assert refused.status_code == 401 and "Ce code est incorrect ou a déjà servi." in refused.text
    next_code = code_at(secret, 1)  # computed once: the same code below, whatever the clock does
    accepted = second_step(fresh, next_code, "/account")
    assert accepted.status_code == 303 and accepted.headers["location"] == "/account"
    assert fresh.get("/account").status_code == 200

    again = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    password_step(again)
    assert second_step(again, next_code).status_code == 401  # the same code, once only


def test_the_second_step_needs_the_password_first(client: TestClient, member: Member) -> None:
    page = client.get("/login/second-step?next=/account")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    client.cookies.set("portail_second_step", "forged")
    assert client.get("/login/second-step").status_code == 303


def test_the_second_step_is_throttled_per_account(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    secret, _codes, _page = enrol_totp(client)
    fresh = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    password_step(fresh)
    statuses = [second_step(fresh, "12345x").status_code for _ in range(settings.login_failures_before_delay)]
    assert statuses[-1] == 401
    blocked = second_step(fresh, code_at(secret, 1))
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


def test_a_recovery_code_logs_in_once_and_says_how_many_remain(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    _secret, codes, _page = enrol_totp(client)
    fresh = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    password_step(fresh)
    used = second_step(fresh, codes[3].upper().replace("-", " "))
    assert used.status_code == 303
    assert "Il vous en reste 9" in fresh.get(used.headers["location"], follow_redirects=True).text
    assert "Un code de récupération de votre compte a été utilisé" in outbox(settings)[-1]["Subject"]
    assert "/account#sessions-h" in mail_text(outbox(settings)[-1])

    other = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    password_step(other)
    assert second_step(other, codes[3]).status_code == 401


def test_regenerating_recovery_codes_voids_the_old_ones(client: TestClient, member: Member) -> None:
    login(client)
    _secret, old, _page = enrol_totp(client)
    regenerated = post(client, "/account/security/recovery-codes")
    new = CODE_RE.findall(regenerated.text)
    assert regenerated.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    fresh = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    password_step(fresh)
    assert second_step(fresh, old[0]).status_code == 401
    assert second_step(fresh, new[0]).status_code == 303


def test_adding_and_removing_the_app_are_mailed(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    enrol_totp(client)
    assert outbox(settings)[-1]["Subject"] == "Une méthode de connexion a été ajoutée à votre compte"
    removed = post(client, "/account/security/totp-remove")
    assert removed.status_code == 303
    assert outbox(settings)[-1]["Subject"] == "Une méthode de connexion a été retirée de votre compte"
    assert "Configurer une application" in client.get("/account/security").text
