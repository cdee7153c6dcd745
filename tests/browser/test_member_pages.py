"""Every member page on a phone (390×844) and a desktop (1280×900) in real Chromium: nothing sticks out
sideways (``scrollWidth <= innerWidth``), axe-core finds no violation of any impact, and the narrow header
opens its menu from a button. The member is set up through the pages (sign up, confirm, log in); the one
OpenID Connect client is created as an administrator would (``create_client``, what ``portail clients create`` calls).
Screenshots of the main pages at both widths: ``PORTAIL_SCREENSHOTS=1`` writes them to ``docs/screenshots/``."""

from __future__ import annotations

import os
import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from portail.accounts.models import Member
from portail.db import Database
from portail.notifications.models import Notification
from portail.oidc.clients import ClientSpec, create_client
from tests import seed
from tests.browser.conftest import ARTIFACTS, ROOT, LiveServer, axe_check
from tests.conftest import link_in, outbox

pytestmark = pytest.mark.browser

PASSWORD = "une phrase de passe solide"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# `PORTAIL_SCREENSHOTS=1` refreshes the README's screenshots; otherwise they go to the git-ignored artifacts.
SCREENSHOTS = ROOT / "docs" / "screenshots" if os.environ.get("PORTAIL_SCREENSHOTS") else ARTIFACTS / "screenshots"
MAIN_PAGES = {"home", "account", "my-data", "ledger", "notifications", "signup", "login"}

MEMBER_PAGES = {
    "home": "/",
    "account": "/account",
    "security": "/account/security",
    "notifications": "/notifications",
    "notification-preferences": "/notifications/preferences",
    "my-data": "/account/data",
    "ledger": "/account/data/ledger",
    "access-log": "/account/data/access",
    "organizations": "/organizations",
    "territory": "/account/territory",
    "api-tokens": "/account/api-tokens",
    "privacy-history": "/privacy/history",
    "instance": "/federation/instances/agora",
    "directory": "/federation/directory",
}
VISITOR_PAGES = {"login": "/login", "signup": "/signup", "reset": "/password/forgot"}


# Codes a member should never read: scope names, protocol words, status and action codes, exception text.
RAW_CODES = re.compile(
    r"\b(openid|offline_access|userinfo|preferred_username"
    r"|down_flagged|Errno|Exception|Error:|null|undefined)\b|\b[a-z]+\.[a-z]+_[a-z_]+\b|\{\{|%\("
)
ENGLISH_IN_FRENCH = re.compile(
    r"\b(None|cancelled|pending|ready|failed|granted|withdrawn"  # status codes, and English words
    r"|the|your|you|and|with|for|this|Territory|Log in|Sign up|Try again)\b"
)
FRENCH_IN_ENGLISH = re.compile(r"\b(votre|vos|les|des|une|pour|avec|dans|Réessayez|Territoire|consentement)\b")


def visible_text(page: Page) -> str:
    return str(page.evaluate("document.body.innerText"))


def no_raw_codes(page: Page, name: str, other_language: re.Pattern[str]) -> None:
    text = visible_text(page)
    codes = sorted({m.group(0) for m in RAW_CODES.finditer(text)})
    assert not codes, f"{name}: raw codes in the visible text: {codes}"
    foreign = sorted({m.group(0) for m in other_language.finditer(text)})
    assert not foreign, f"{name}: words of the other language: {foreign}"


def seed_notification(server: LiveServer, email: str) -> None:
    """One notification whose title is a single very long word (it used to make the inbox 4,934 px wide)."""
    db = Database(server.settings)
    with db.session() as s:
        member = s.exec(select(Member).where(Member.email == email)).one()
        hoster = seed.hoster(s, "coop-nuage", "Coop Nuage")
        where = seed.instance(s, "agora", "Agora", software="discourse", hoster_id=hoster.id, health="up")
        long_word = "Anticonstitutionnellement" * 12
        s.add(
            Notification(member_id=member.id, instance_id=where.id, external_id="n1", kind="mention", title=long_word)
        )
    db.dispose()


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def check(page: Page, name: str, width: str) -> None:
    assert fits(page), f"{name} ({width}) scrolls sideways: {page.evaluate('document.documentElement.scrollWidth')} px"
    axe_check(page, impacts=("minor", "moderate", "serious", "critical"))
    if name in MAIN_PAGES:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=False)


def sign_up_and_log_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/signup")
    page.get_by_label("Nom", exact=True).fill("Béatrice Gagnon")
    page.get_by_label("Adresse courriel").fill("beatrice@example.org")
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("J’accepte les conditions d’utilisation").check()
    page.get_by_label("J’accepte la politique de confidentialité").check()
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifiez vos courriels")
    [mail] = outbox(server.settings)
    page.goto(link_in(mail))
    page.get_by_label("Adresse courriel").fill("beatrice@example.org")
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Béatrice Gagnon")


def consent_url(server: LiveServer) -> str:
    db = Database(server.settings)
    with db.session() as s:
        create_client(
            s, ClientSpec(name="Agenda du quartier", client_id="agenda", redirect_uris=["http://127.0.0.1:9/cb"])
        )
    db.dispose()
    query = {"response_type": "code", "client_id": "agenda", "redirect_uri": "http://127.0.0.1:9/cb"}
    query |= {"scope": "openid profile email", "state": "s1", "nonce": "n1"}
    return f"{server.url}/authorize?{urlencode(query)}"


@pytest.mark.parametrize(("width", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_every_member_page_fits_the_screen_and_is_axe_clean(
    live_server: LiveServer, browser: Browser, width: str, viewport: dict[str, int]
) -> None:
    context = browser.new_context(
        locale="fr-CA", viewport=viewport, extra_http_headers={"Accept-Language": "fr-CA,fr;q=0.9"}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    for name, path in VISITOR_PAGES.items():
        page.goto(f"{live_server.url}{path}")
        check(page, name, width)
    sign_up_and_log_in(page, live_server)
    seed_notification(live_server, "beatrice@example.org")
    page.goto(consent_url(live_server))
    expect(page).to_have_url(re.compile(r"/authorize/consent/"))
    check(page, "consent", width)
    no_raw_codes(page, "consent", ENGLISH_IN_FRENCH)
    page.route("http://127.0.0.1:9/**", lambda route: route.fulfill(body="outil"))
    page.get_by_role("button", name=re.compile("Autoriser|Accepter")).first.click()
    page.wait_for_url(re.compile(r"127\.0\.0\.1:9/cb"))
    for name, path in MEMBER_PAGES.items():
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("h1").first).to_be_visible()
        check(page, name, width)
        no_raw_codes(page, name, ENGLISH_IN_FRENCH)
    page.goto(f"{live_server.url}/account/data")
    if page.get_by_role("button", name="Menu").is_visible():
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    for name, path in MEMBER_PAGES.items():
        page.goto(f"{live_server.url}{path}")
        no_raw_codes(page, f"{name} (en)", FRENCH_IN_ENGLISH)
    page.goto(f"{live_server.url}/account/data")
    page.get_by_role("button", name="Prepare an archive").click()
    check(page, "export", width)
    page.goto(f"{live_server.url}/account/data")
    page.get_by_label("Confirm with your password").fill(PASSWORD)
    page.get_by_role("button", name="Ask for my account to be deleted").click()
    expect(page.locator("h1").first).to_be_visible()
    check(page, "deletion", width)
    context.close()


def test_the_phone_header_is_compact_and_opens_its_menu(live_server: LiveServer, browser: Browser) -> None:
    context = browser.new_context(locale="fr-CA", viewport=PHONE, extra_http_headers={"Accept-Language": "fr-CA"})
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    header = page.locator("header.top")
    box = header.bounding_box()
    assert box is not None and box["height"] <= 70, box
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("link", name="Créer un compte").first).to_be_visible()  # the page's own link
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#site-menu").get_by_role("link", name="Se connecter")).to_have_attribute(
        "aria-current", "page"
    )
    context.close()


def test_an_empty_sign_up_shows_every_error_at_its_field_and_keeps_the_values(
    live_server: LiveServer, page: Page
) -> None:
    page.goto(f"{live_server.url}/signup")
    page.get_by_label("Nom", exact=True).fill("Béatrice Gagnon")
    page.get_by_label("J’accepte la politique de confidentialité").check()
    page.get_by_role("button", name="Créer mon compte").click()

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Corrigez ces 3 champs")
    for field in ("email", "password", "accept_terms"):
        control = page.locator(f"#f-{field}")
        expect(control).to_have_attribute("aria-invalid", "true")
        described = control.get_attribute("aria-describedby") or ""
        assert f"e-{field}" in described.split()
        expect(page.locator(f"#e-{field}")).to_be_visible()
        expect(summary.locator(f'a[href="#f-{field}"]')).to_be_visible()
    expect(page.locator("#f-name")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-accept_terms")).to_have_text(re.compile("conditions d’utilisation"))
    expect(page.locator("#f-email")).to_be_focused()
    expect(page.get_by_label("Nom", exact=True)).to_have_value("Béatrice Gagnon")
    expect(page.get_by_label("J’accepte la politique de confidentialité")).to_be_checked()
    axe_check(page, impacts=("minor", "moderate", "serious", "critical"))

    page.get_by_role("button", name="Afficher le mot de passe").click()
    expect(page.locator("#f-password")).to_have_attribute("type", "text")


def test_the_new_password_hint_uses_the_common_password_list(live_server: LiveServer, page: Page) -> None:
    page.goto(f"{live_server.url}/signup")
    password = page.get_by_label("Mot de passe", exact=True)
    password.fill("court")
    expect(page.locator("#s-password")).to_have_text(re.compile("Encore trop court"))
    password.fill("password123")
    expect(page.locator("#s-password")).to_have_text(re.compile("trop courant"))
    password.fill(PASSWORD)
    expect(page.locator("#s-password")).to_have_text(re.compile("Bon choix"))


def test_a_first_visit_gets_a_welcome_that_can_be_dismissed(live_server: LiveServer, page: Page) -> None:
    sign_up_and_log_in(page, live_server)
    welcome = page.get_by_role("region", name="Bienvenue! Par où commencer")
    expect(welcome).to_be_visible()
    expect(welcome.get_by_role("link", name="Mes données")).to_have_attribute("href", "/account/data")
    welcome.get_by_role("button", name="J’ai compris, masquer ce message").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Béatrice Gagnon")
    expect(welcome).to_have_count(0)
    page.reload()
    expect(welcome).to_have_count(0)
