"""Passkeys through real Chromium and its DevTools-protocol virtual authenticator (resident keys, user
verification): register one from the security page, log in without a password, use it as the
second step after the password; a cloned authenticator (sign count going backwards), another RP id,
a reused or an expired challenge are refused (WebAuthn Level 2 §7.2)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Page, Route, expect
from sqlmodel import Session, col, select

from portail.accounts.mfa import webauthn
from portail.accounts.mfa.models import WebauthnChallenge
from portail.accounts.models import LoginSession
from tests.browser.conftest import LiveServer, axe_check, no_horizontal_overflow, shot
from tests.conftest import PASSWORD, create_member, db_call

pytestmark = pytest.mark.browser

EMAIL = "camille@example.org"


def virtual_authenticator(page: Page) -> tuple[Any, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, found["authenticatorId"]


def password_login(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Adresse courriel").fill(EMAIL)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()


def log_out(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/logout")
    page.get_by_role("button", name=re.compile("Me déconnecter")).click()
    expect(page).to_have_url(re.compile(r"/login$"))


def register_passkey(page: Page, server: LiveServer, name: str) -> None:
    page.goto(f"{server.url}/account/security")
    page.get_by_label("Nom de la clé d’accès").fill(name)
    page.get_by_role("button", name="Ajouter une clé d’accès").click()


def last_session_amr(server: LiveServer) -> str:
    def read(db: Session) -> str:
        row = db.exec(select(LoginSession).order_by(LoginSession.id.desc())).first()  # type: ignore[union-attr]
        assert row is not None
        return row.amr

    return str(db_call(server.settings, read))


def test_register_a_passkey_log_in_without_password_and_as_second_step(live_server: LiveServer, page: Page) -> None:
    create_member(live_server.settings, email=EMAIL, name="Camille Roy")
    virtual_authenticator(page)
    password_login(page, live_server)
    register_passkey(page, live_server, "Ordinateur de Camille")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos codes de récupération")
    assert page.locator("ul.recovery-codes li").count() == 10
    page.get_by_role("link", name="Je les ai notés, continuer").click()
    expect(page.get_by_text("Ordinateur de Camille")).to_be_visible()
    axe_check(page)
    shot(page, "mfa-01-security")

    log_out(page, live_server)
    page.get_by_role("button", name="Se connecter avec une clé d’accès").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Camille Roy")
    assert last_session_amr(live_server) == "hwk user mfa"

    log_out(page, live_server)
    password_login(page, live_server)
    expect(page.get_by_role("heading", level=1)).to_have_text("Validation en deux étapes")
    axe_check(page)
    page.get_by_role("button", name="Utiliser ma clé d’accès").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Camille Roy")
    assert set(last_session_amr(live_server).split()) >= {"pwd", "hwk", "mfa"}
    page.goto(f"{live_server.url}/account")
    expect(page.get_by_text("Connexion par mot de passe + clé d’accès").first).to_be_visible()


def test_rename_and_remove_a_passkey_in_english(live_server: LiveServer, page: Page) -> None:
    create_member(live_server.settings, email=EMAIL, name="Camille Roy", locale="en")
    virtual_authenticator(page)
    password_login(page, live_server)
    page.goto(f"{live_server.url}/account/security")
    page.get_by_label("Passkey name").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    page.get_by_role("link", name="I wrote them down, continue").click()
    page.set_viewport_size({"width": 360, "height": 800})
    assert no_horizontal_overflow(page)
    page.get_by_label("New name").fill("Camille's laptop")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("The passkey is renamed.")
    expect(page.get_by_text("Camille's laptop", exact=True)).to_be_visible()
    page.get_by_role("button", name="Remove", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("The passkey is removed.")
    expect(page.get_by_text("Camille's laptop", exact=True)).to_have_count(0)
    axe_check(page)


def test_a_cloned_authenticator_is_refused(live_server: LiveServer, page: Page) -> None:
    """§7.2 step 21: a signature counter that does not move forward signals a cloned authenticator."""
    create_member(live_server.settings, email=EMAIL, name="Camille Roy")
    cdp, authenticator = virtual_authenticator(page)
    password_login(page, live_server)
    register_passkey(page, live_server, "Clé")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos codes de récupération")
    log_out(page, live_server)
    page.get_by_role("button", name="Se connecter avec une clé d’accès").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Camille Roy")
    log_out(page, live_server)

    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    cdp.send(
        "WebAuthn.removeCredential", {"authenticatorId": authenticator, "credentialId": credential["credentialId"]}
    )
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator, "credential": {**credential, "signCount": 0}})
    page.get_by_role("button", name="Se connecter avec une clé d’accès").click()
    expect(page.get_by_role("alert")).to_contain_text("semble avoir été copiée")


def test_an_assertion_for_another_rp_id_or_with_a_used_or_expired_challenge_is_refused(
    live_server: LiveServer, page: Page
) -> None:
    create_member(live_server.settings, email=EMAIL, name="Camille Roy")
    virtual_authenticator(page)
    password_login(page, live_server)
    register_passkey(page, live_server, "Clé")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos codes de récupération")
    log_out(page, live_server)

    captured: list[str] = []

    def keep(route: Route) -> None:
        """Take the assertion the page would post, and post nothing: the test plays the attacker."""
        form = parse_qs(route.request.post_data or "")
        captured.append(form["credential"][0])
        route.fulfill(status=204)

    page.route("**/login/passkey", keep)
    for attempt_number in range(1, 4):
        page.goto(f"{live_server.url}/login")
        page.get_by_role("button", name="Se connecter avec une clé d’accès").click()
        for _ in range(250):  # the route handler runs on Playwright's side: wait (bounded) for it
            if len(captured) == attempt_number:
                break
            page.wait_for_timeout(20)
    assert len(captured) == 3
    real = webauthn.relying_party(live_server.settings.issuer)
    other_rp = webauthn.RelyingParty(rp_id="autre.example", origin="https://autre.example")
    other_origin = webauthn.RelyingParty(rp_id=real.rp_id, origin="https://localhost")

    def attempt(db: Session, rp: webauthn.RelyingParty, credential: str) -> str:
        outcome = webauthn.authenticate(db, rp, "login", credential, None)
        return outcome.message if isinstance(outcome, webauthn.PasskeyRefused) else "accepted"

    def expire(db: Session) -> None:
        for row in db.exec(select(WebauthnChallenge).where(col(WebauthnChallenge.used_at).is_(None))):
            row.expires_at = row.created_at - dt.timedelta(seconds=1)
            db.add(row)

    refused = "Votre appareil n’a pas pu être vérifié pour Portail. Réessayez."
    spent = "Cette demande a expiré ou a déjà servi. Réessayez."
    assert db_call(live_server.settings, attempt, other_rp, captured[0]) == refused
    assert db_call(live_server.settings, attempt, real, captured[0]) == spent  # the challenge was used
    assert db_call(live_server.settings, attempt, other_origin, captured[1]) == refused
    db_call(live_server.settings, expire)
    assert db_call(live_server.settings, attempt, real, captured[2]) == spent  # expired
