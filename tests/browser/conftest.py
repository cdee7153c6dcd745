"""Browser-test fixtures, shared by every package's browser tests.

- ``live_server``: the real application served by uvicorn in a background thread on
  127.0.0.1:<free port>, issuer ``http://localhost:<port>``, on a fresh SQLite database in a tmp var dir.
  It yields a ``LiveServer`` with ``.url``, ``.settings`` and ``.app``.
- ``browser`` (one headless Chromium per session, Debian's ``/usr/bin/chromium``, never a download) and
  ``page`` (a fresh context per test, French first: ``Accept-Language: fr-CA``).
- ``axe_check(page)``: runs axe-core (installed from npm into ``tests/browser/node_modules`` by
  ``scripts/ensure-test-deps.sh``) on the current page and fails on serious or critical violations.
- ``no_horizontal_overflow(page)``: true when nothing sticks out sideways (use at 360 px width).
- ``shot(page, name)``: a full-page screenshot in ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette

from portail.app import create_app
from portail.config import Settings
from tests.conftest import free_port, make_settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: Starlette


@pytest.fixture
def live_server(tmp_path: Path, sqlite_template: Path) -> Iterator[LiveServer]:
    port = free_port()
    database = tmp_path / "portail.db"
    shutil.copy(sqlite_template, database)
    settings = make_settings(tmp_path, f"sqlite:///{database}", issuer=f"http://localhost:{port}")
    app = create_app(settings, migrate=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test server did not start on port {port}")
        time.sleep(0.02)
    httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).raise_for_status()
    yield LiveServer(url=f"http://localhost:{port}", settings=settings, app=app)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope on purpose: while Playwright's sync API is active it leaves its event loop marked as
    # running in the main thread, so any later ``asyncio.run`` (used by many non-browser tests) would fail.
    # Tearing it down after each browser module (and ordering browser tests last, see tests/conftest.py)
    # keeps the rest of the suite independent of test order.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} introuvable / missing: run scripts/ensure-test-deps.sh", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fr-CA", extra_http_headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_overflow(page: Page) -> bool:
    width: Any = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    return int(width) <= 0


def axe_check(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core on the page; fail the test on violations of the given impacts. Returns all violations.

    axe is evaluated through the DevTools protocol (``page.evaluate``), which Portail's CSP does not
    block, so the page is checked under its real policy.
    """
    if not AXE.exists():
        pytest.fail(f"axe-core manquant / missing ({AXE}): run scripts/ensure-test-deps.sh", pytrace=False)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})"
    )
    violations: list[dict[str, Any]] = result["violations"]
    bad = [v for v in violations if v.get("impact") in impacts]
    if bad:
        details = "\n".join(
            f"- {v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}" for v in bad
        )
        pytest.fail(f"axe: violations on {page.url}:\n{details}", pytrace=False)
    return violations
