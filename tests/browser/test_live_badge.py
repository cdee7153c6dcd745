"""The menu's unread badge is live on every member page, not only in the inbox: a notification pushed
while the member reads "Mon compte" shows up in the badge without a reload (one event stream per page)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from portail.accounts.models import Member
from tests.browser.conftest import LiveServer
from tests.conftest import PASSWORD, create_member
from tests.integration.notifications.conftest import make_pusher, sub_of

pytestmark = pytest.mark.browser


def test_the_badge_counts_a_new_notification_on_any_page(live_server: LiveServer, page: Page) -> None:
    create_member(live_server.settings, "alice@example.org", "Alice Tremblay")
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Adresse courriel").fill("alice@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.locator(".notifications-link")).to_have_attribute("data-live", "open")  # the home page's stream
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/notifications/stream") else None)
    page.goto(f"{live_server.url}/account")
    badge = page.locator(".notifications-link [data-unread]")
    expect(badge).to_be_hidden()  # nothing unread: no badge (and no red zero)
    expect(page.locator(".notifications-link")).to_have_attribute("data-live", "open")  # the stream is subscribed

    app = live_server.app
    pusher = make_pusher(app)
    with app.state.db.session() as session:
        alice = session.exec(select(Member).where(Member.email == "alice@example.org")).one()
    item = {"id": "n-1", "sub": sub_of(app, alice, pusher), "title": "Nouvelle réponse"}
    pushed = httpx.post(
        f"{live_server.url}/api/v1/notifications",
        json={"notifications": [item]},
        headers={"Authorization": f"Bearer {pusher.token()}"},
        timeout=10,
    )
    assert pushed.json()["accepted"] == 1, pushed.text
    expect(badge).to_have_text("1")
    expect(badge).to_be_visible()
    assert len(streams) == 1  # one connection for the page
