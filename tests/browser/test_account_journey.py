"""A person's first visit, in real headless Chromium: sign up, verify the address from the mail,
log in, switch to English, log out; every page usable at 360 px and free of serious axe violations."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, axe_check, no_horizontal_overflow, shot
from tests.conftest import link_in, outbox

pytestmark = pytest.mark.browser

PASSWORD = "une phrase de passe solide"


def test_sign_up_verify_log_in_switch_language_and_log_out(live_server: LiveServer, page: Page) -> None:
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bienvenue sur Portail En commun")
    page.get_by_role("link", name="Créer un compte").first.click()

    expect(page).to_have_url(re.compile(r"/signup$"))
    page.get_by_label("Nom").fill("Béatrice Gagnon")
    page.get_by_label("Adresse courriel").fill("beatrice@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_label("J’accepte les conditions d’utilisation").check()
    page.get_by_label("J’accepte la politique de confidentialité").check()
    shot(page, "accounts-01-signup")
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifiez vos courriels")

    [mail] = outbox(live_server.settings)
    link = link_in(mail)
    assert link.startswith(f"{live_server.url}/verify?token=")
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Votre adresse courriel est confirmée.")

    page.get_by_label("Adresse courriel").fill("beatrice@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Béatrice Gagnon")
    shot(page, "accounts-02-home")

    page.get_by_role("link", name="Mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon compte")
    page.get_by_label("Langue").select_option("en")
    page.get_by_role("button", name="Enregistrer le profil").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    expect(page.get_by_role("status")).to_have_text("Your profile is saved.")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shot(page, "accounts-03-account-en")

    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log out")
    page.get_by_role("button", name="Log me out everywhere").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You are logged out of Portail and of your tools.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to En commun")  # the language stays
    shot(page, "accounts-04-logged-out-en")


def test_the_header_button_switches_a_visitor_to_english_and_back(live_server: LiveServer, page: Page) -> None:
    page.goto(f"{live_server.url}/login?next=/account")
    page.get_by_role("button", name="English").click()
    expect(page).to_have_url(re.compile(r"/login\?next=/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to En commun")
    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter à En commun")


def test_forms_work_without_javascript(live_server: LiveServer, page: Page) -> None:
    context = page.context.browser.new_context(java_script_enabled=False, locale="fr-CA")  # type: ignore[union-attr]
    try:
        tab = context.new_page()
        tab.goto(f"{live_server.url}/login")
        tab.get_by_label("Adresse courriel").fill("nobody@example.org")
        tab.get_by_label("Mot de passe").fill("not the password")
        tab.get_by_role("button", name="Se connecter", exact=True).click()
        expect(tab.get_by_role("alert")).to_have_text("Adresse courriel ou mot de passe incorrect.")
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/login", "/signup", "/password/forgot", "/terms", "/nope"])
def test_visitor_pages_fit_360_px_and_pass_axe(live_server: LiveServer, page: Page, path: str) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server.url}{path}")
    assert no_horizontal_overflow(page), path
    axe_check(page)


def test_member_pages_fit_360_px_and_pass_axe(live_server: LiveServer, page: Page) -> None:
    from tests.conftest import create_member

    create_member(
        live_server.settings, "alice@example.org", "Alice Tremblay-Bélanger de la Montagne", password=PASSWORD
    )
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Adresse courriel").fill("alice@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")
    for path in ("/", "/account", "/logout"):
        page.goto(f"{live_server.url}{path}")
        assert no_horizontal_overflow(page), path
        axe_check(page)
    shot(page, "accounts-05-logout-360")
    page.goto(f"{live_server.url}/account")
    shot(page, "accounts-06-account-360")


def test_pages_raise_no_csp_violation(live_server: LiveServer, page: Page) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    for path in ("/", "/login", "/signup"):
        page.goto(f"{live_server.url}{path}")
    assert problems == []
