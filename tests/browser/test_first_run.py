"""First impression, in real Chromium: a Portail started from the repository's own ``instances.toml``
(five demo instances under ``.example``) plus two instances on loopback — one that answered and then
stopped, one never reached — shows three different things: demo entries and the never-reached one are
never "Hors service" nor "injoignable", the one that went down is. Tiles, directory (page and JSON),
instance page and the navigation menu; screenshots at 390 px and 1280 px in ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from portail.db import Database
from portail.federation import instances_file, probes
from tests.browser.conftest import ROOT, LiveServer, axe_check, no_horizontal_overflow, shot
from tests.browser.test_menu_widget import TOOL_PAGE, menu_host
from tests.browser.test_portal import log_in
from tests.conftest import create_member, free_port

pytestmark = pytest.mark.browser

DEMO = ["Passerelles", "Praxis", "Nuage En commun", "Clavardage En commun"]  # the repository's central ones


@dataclass
class Atelier:
    """A tool on loopback whose health answer can be switched off; ``/tool`` embeds the menu."""

    url: str
    portal: str
    server: ThreadingHTTPServer
    healthy: list[bool] = field(default_factory=lambda: [True])


@pytest.fixture
def atelier(live_server: LiveServer) -> Iterator[Atelier]:
    port = free_port()
    portal = live_server.url

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/tool":
                body, status = TOOL_PAGE.replace("{portal}", portal).encode(), 200
            else:
                body, status = (b"ok", 200) if state.healthy[0] else (b"broken", 503)
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # localhost, as the portal: the same site, so the member's cookie reaches the menu
    state = Atelier(url=f"http://localhost:{port}", portal=portal, server=server)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _instances_file(tmp: Path, atelier: Atelier) -> Path:
    """The repository's file, as shipped, plus two instances an operator would add on loopback."""
    never = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    extra = f"""
[[instances]]
slug = "atelier"
name = "Atelier du Centre"
software = "other"
base_url = "{atelier.url}"
scope = "central"
redirect_uris = ["{atelier.url}/callback"]

[[instances]]
slug = "agenda"
name = "Agenda neuf"
software = "other"
base_url = "{never}"
scope = "central"
redirect_uris = ["{never}/callback"]
"""
    path = tmp / "instances.toml"
    path.write_text((ROOT / "instances.toml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def _probe_round(live_server: LiveServer) -> list[str]:
    """One prober round, as the background task runs it (in its own thread: Playwright owns this loop)."""
    db = Database(live_server.settings)
    try:
        with ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, probes.run_round(live_server.settings, db)).result()
    finally:
        db.dispose()
    return sorted(target.slug for target, _result in results)


@pytest.fixture
def deployed(live_server: LiveServer, atelier: Atelier, tmp_path: Path) -> LiveServer:
    db = Database(live_server.settings)
    try:
        db.call(instances_file.sync, live_server.settings, instances_file.load(_instances_file(tmp_path, atelier)))
    finally:
        db.dispose()
    assert _probe_round(live_server) == ["agenda", "atelier"]  # demo entries are never probed
    atelier.healthy[0] = False
    assert _probe_round(live_server) == ["agenda", "atelier"]  # the atelier answered once, now it fails
    create_member(live_server.settings, "alice@example.org", is_admin=True)
    return live_server


def test_demo_and_never_reached_instances_are_not_shown_as_down_but_a_fallen_one_is(
    deployed: LiveServer, atelier: Atelier, page: Page
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, deployed, "alice@example.org")
    tiles = page.locator("#tiles")
    for name in DEMO:
        tile = tiles.locator("li.tile", has=page.get_by_role("heading", name=name, exact=True))
        expect(tile.locator(".health")).to_have_text("◇ Démonstration (adresse fictive)")
        expect(tile.locator(".health")).to_have_class("health health-demo")
    expect(page.locator("#tile-agenda .health")).to_have_text("○ Pas encore joint")
    expect(page.locator("#tile-atelier .health")).to_have_text("✕ Hors service pour l’instant")
    expect(page.get_by_text("Hors service pour l’instant")).to_have_count(1)
    axe_check(page)
    shot(page, "first-run-portal-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_horizontal_overflow(page)
    shot(page, "first-run-portal-390")

    page.goto(f"{deployed.url}/federation/directory")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(7)
    expect(page.get_by_text("injoignable")).to_have_count(1)
    expect(rows.filter(has_text="Atelier du Centre")).to_contain_text("injoignable")
    expect(rows.filter(has_text="Agenda neuf")).to_contain_text("pas encore jointe")
    expect(page.locator(".availability-demo")).to_have_count(5)
    assert no_horizontal_overflow(page)
    shot(page, "first-run-directory-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    axe_check(page)
    shot(page, "first-run-directory-1280")

    listed = httpx.get(f"{deployed.url}/federation/directory.json").json()["instances"]
    states = {i["slug"]: i["availability"] for i in listed}
    assert states == {
        **dict.fromkeys(["passerelles", "praxis", "nuage", "matrix", "nuage-memphremagog"], "demo"),
        "atelier": "down",
        "agenda": "new",
    }
    statool = httpx.get(f"{deployed.url}/federation/statoolinfos/services/passerelles.properties")
    assert statool.status_code == 404  # a demo entry is not a service to crawl

    page.goto(f"{deployed.url}/federation/instances/passerelles")
    expect(page.locator(".availability")).to_have_text("◇ démonstration (adresse fictive)")
    page.goto(f"{deployed.url}/federation/instances/atelier")
    expect(page.locator(".availability")).to_have_text("✕ injoignable")

    page.goto(f"{atelier.url}/tool")
    expect(menu_host(page)).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Mes outils En commun").click()
    links = page.get_by_role("navigation", name="Mes outils").get_by_role("link")
    expect(links).to_have_count(6)  # the territorial demo instance is not Alice's
    expect(links.filter(has_text="hors service")).to_have_count(1)
    expect(links.filter(has_text="Atelier du Centre")).to_contain_text("✕ hors service")
    expect(links.filter(has_text="◇ démonstration")).to_have_count(len(DEMO))
    expect(links.filter(has_text="Agenda neuf")).not_to_contain_text("hors service")
    shot(page, "first-run-menu-1280")
