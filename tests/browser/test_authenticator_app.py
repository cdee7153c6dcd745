"""An authenticator app enrolled in real Chromium: the QR code drawn on the page, the key typed from
the page into pyotp (as a phone app would compute it), the second step at the next login; the pages
usable at 360 px and free of serious axe violations."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, axe_check, no_horizontal_overflow, shot
from tests.conftest import PASSWORD, create_member

pytestmark = pytest.mark.browser


def test_enrol_an_authenticator_app_and_log_in_with_its_code(live_server: LiveServer, page: Page) -> None:
    create_member(live_server.settings, email="ines@example.org", name="Inès Gagnon")
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(f"{live_server.url}/login?next=/account")
    page.get_by_label("Adresse courriel").fill("ines@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    page.get_by_role("link", name="Gérer la validation en deux étapes").click()
    page.get_by_role("button", name="Configurer une application d’authentification").click()
    expect(page.locator("figure.qr svg")).to_be_visible()
    shown = re.search(r"Clé : ([A-Z2-7 ]+)", page.locator("figure.qr figcaption").inner_text())
    assert shown
    secret = shown.group(1).replace(" ", "")
    assert no_horizontal_overflow(page)
    axe_check(page)
    shot(page, "mfa-02-totp-qr")
    page.get_by_label("Code à 6 chiffres affiché par l’application").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirmer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos codes de récupération")
    assert no_horizontal_overflow(page)

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Adresse courriel").fill("ines@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Validation en deux étapes")
    axe_check(page)
    page.get_by_label("Code de l’application d’authentification ou code de récupération").fill(
        pyotp.TOTP(secret).at(time.time() + 30)
    )
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Inès Gagnon")
