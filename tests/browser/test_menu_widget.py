"""The navigation menu embedded in a tool's page served from another local origin, in real Chromium:
an active instance's page shows the member's tools (keyboard and screen-reader usable, styles kept
inside its shadow DOM, under the tool's strict CSP); a foreign origin is refused by CORS; a browser
without a Portail session is offered the login."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from portail.accounts.models import Member
from portail.db import Database, utcnow
from portail.notifications.models import Notification
from tests import seed
from tests.browser.conftest import LiveServer, axe_check, shot
from tests.browser.test_portal import log_in
from tests.conftest import create_member, free_port

pytestmark = pytest.mark.browser

TOOL_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Nuage de test</title>
<link rel="stylesheet" href="/tool.css"></head>
<body><header><h1>Nuage de test</h1><span data-portail-menu></span></header>
<main><p>Le contenu de l’outil.</p><button type="button" class="own">Bouton de l’outil</button></main>
<script src="{portal}/widget/menu.js" defer></script></body></html>"""
# The tool's own stylesheet is hostile on purpose: the menu must not inherit any of it.
TOOL_CSS = (
    "button { background: rgb(128, 0, 0) !important; color: #fff !important; border-radius: 0 !important; "
    "font-family: serif; } * { color: rgb(0, 0, 160); }"
)


@dataclass
class Tool:
    url: str
    server: ThreadingHTTPServer


def _serve_tool(portal: str) -> Iterator[Tool]:
    page = TOOL_PAGE.replace("{portal}", portal).encode()
    csp = (
        f"default-src 'self'; script-src 'self' {portal}; connect-src 'self' {portal}; "
        f"img-src 'self' {portal}; style-src 'self'"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (TOOL_CSS.encode(), "text/css") if self.path == "/tool.css" else (page, "text/html")
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Tool(url=f"http://localhost:{port}", server=server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def tool(live_server: LiveServer) -> Iterator[Tool]:
    """A registered, active instance's page (its origin is an Instance.base_url)."""
    yield from _serve_tool(live_server.url)


@pytest.fixture
def stranger(live_server: LiveServer) -> Iterator[Tool]:
    """The same page on an origin that is not a registered instance."""
    yield from _serve_tool(live_server.url)


@pytest.fixture
def registry(live_server: LiveServer, tool: Tool) -> None:
    create_member(live_server.settings, email="alice@example.org", name="Alice Tremblay")
    db = Database(live_server.settings)
    with db.session() as s:
        coop = seed.hoster(s, "coop-nuage", "Coop Nuage")
        seed.instance(s, "nuage-test", "Nuage de test", software="nextcloud", base_url=tool.url, hoster_id=coop.id)
        seed.instance(
            s,
            "forum",
            "Forum En commun",
            software="discourse",
            base_url="https://forum.encommun.example",
            hoster_id=coop.id,
            health="down",
            last_up_at=utcnow(),  # reached once: "down", not "not reached yet"
        )
        praxis = seed.instance(s, "praxis", "Praxis", software="praxis", base_url="https://praxis.encommun.example")
        alice = s.exec(select(Member).where(Member.email_key == "alice@example.org")).one()
        for n in range(3):
            s.add(Notification(member_id=alice.id, instance_id=praxis.id, external_id=f"n{n}", title=f"Note {n}"))
    db.dispose()


def menu_host(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-portail-menu]")


def test_the_menu_lists_the_member_tools_inside_an_active_instance_page(
    live_server: LiveServer, registry: None, tool: Tool, page: Page
) -> None:
    log_in(page, live_server, "alice@example.org")
    page.goto(tool.url)
    expect(menu_host(page)).to_have_attribute("data-state", "ready")
    toggle = page.get_by_role("button", name="Mes outils En commun, 3 notifications non lues")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_contain_text("3")  # the visible badge

    # The tool's hostile CSS does not reach inside the shadow DOM, and the menu's own styles apply
    # even under the tool's CSP (style-src 'self').
    styles = toggle.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).borderTopLeftRadius]")
    assert styles[0] != "rgb(128, 0, 0)"
    assert styles[1] != "0px"
    own = page.get_by_role("button", name="Bouton de l’outil")
    assert own.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(128, 0, 0)"  # and nothing leaks out

    # Keyboard: focus the button, Enter opens, arrows move through the tools, Escape closes.
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    nav = page.get_by_role("navigation", name="Mes outils")
    links = nav.get_by_role("link")
    expect(links).to_have_count(3)
    expect(links.nth(0)).to_contain_text("Forum En commun")
    expect(links.nth(0)).to_contain_text("hors service")
    expect(links.nth(0)).to_have_attribute("href", "https://forum.encommun.example/auth/oidc")
    expect(links.nth(1)).to_contain_text("Nuage de test")
    expect(links.nth(1)).to_contain_text("vous êtes ici")
    expect(links.nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("ArrowDown")
    expect(links.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("End")  # the last link of the menu: the notifications
    expect(page.get_by_role("link", name="Notifications (3)")).to_have_attribute(
        "href", f"{live_server.url}/notifications"
    )
    expect(page.get_by_role("link", name="Notifications (3)")).to_be_focused()
    page.keyboard.press("Home")
    expect(links.nth(0)).to_be_focused()
    axe_check(page)
    shot(page, "portal-menu-in-a-tool")
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(nav).to_be_hidden()

    # A click elsewhere closes it too; the portal link leads home.
    toggle.click()
    expect(nav).to_be_visible()
    page.get_by_role("heading", name="Nuage de test").click()
    expect(nav).to_be_hidden()
    toggle.click()
    page.get_by_role("link", name="Ouvrir le portail").click()
    expect(page).to_have_url(f"{live_server.url}/")


def test_a_foreign_origin_is_refused_and_gets_no_member_data(
    live_server: LiveServer, registry: None, stranger: Tool, page: Page
) -> None:
    failed: list[str] = []
    console: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("console", lambda m: console.append(m.text))
    log_in(page, live_server, "alice@example.org")
    page.goto(stranger.url)
    expect(menu_host(page)).to_have_attribute("data-state", "error")
    assert f"{live_server.url}/widget/menu.json" in failed  # the browser refused the answer (CORS)
    assert any("CORS" in line for line in console), console
    toggle = page.get_by_role("button", name="Mes outils En commun", exact=True)
    toggle.click()
    expect(page.get_by_text("Le menu n’est pas disponible.")).to_be_visible()
    expect(page.get_by_role("link", name="Nuage de test")).to_have_count(0)
    axe_check(page)


def test_without_a_portail_session_the_menu_offers_to_log_in(
    live_server: LiveServer, registry: None, tool: Tool, browser: Browser
) -> None:
    context = browser.new_context(locale="en-CA", extra_http_headers={"Accept-Language": "en"})
    try:
        page = context.new_page()
        page.goto(tool.url)
        expect(menu_host(page)).to_have_attribute("data-state", "login")
        page.get_by_role("button", name="My En commun tools").click()
        expect(page.get_by_role("link", name="Log in to Portail")).to_have_attribute("href", f"{live_server.url}/login")
    finally:
        context.close()


def test_a_portail_that_does_not_answer_leaves_a_usable_button_not_a_spinner(
    live_server: LiveServer, registry: None, tool: Tool, page: Page
) -> None:
    held: list[object] = []
    log_in(page, live_server, "alice@example.org")
    page.route("**/widget/menu.json", lambda route: held.append(route))  # never answered: Portail hangs
    page.goto(tool.url)
    expect(menu_host(page)).to_have_attribute("data-state", "error", timeout=20_000)
    assert held, "the menu asked Portail"
    page.get_by_role("button", name="Mes outils En commun", exact=True).click()
    expect(page.get_by_text("Le menu n’est pas disponible.")).to_be_visible()
    expect(page.get_by_role("link", name="Ouvrir le portail")).to_have_attribute("href", f"{live_server.url}/")
