"""Export through HTTP: one click, built in the background, a signed link for 24 hours, bad links refused."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

from itsdangerous.timed import TimestampSigner
from pytest import MonkeyPatch
from sqlmodel import select
from starlette.testclient import TestClient

from portail.app import create_app
from portail.config import Settings
from portail.consent import jobs
from portail.consent.models import DataExport
from portail.db import Database
from tests.conftest import BASE_URL, create_member, db_call, link_in, login, outbox
from tests.integration.consent.forms import submit


def _run_jobs(settings: Settings) -> jobs.Pass:
    handle = Database(settings)
    try:
        return asyncio.run(jobs.run_once(handle, settings))
    finally:
        handle.dispose()


def _wait_ready(settings: Settings) -> None:
    """The click wakes the application's jobs; run a pass too, then wait for the archive."""
    _run_jobs(settings)
    for _attempt in range(200):
        if db_call(settings, lambda s: s.exec(select(DataExport.status)).all()) == ["ready"]:
            return
        time.sleep(0.05)
    raise AssertionError("the export was never built")


def _prepare(client: TestClient, settings: Settings) -> str:
    response = submit(client, "/account/data", "/account/data/export", {})
    assert response.status_code == 303
    _wait_ready(settings)
    for _attempt in range(200):  # the mail goes out just after the commit that marks the export ready
        if outbox(settings):
            break
        time.sleep(0.05)
    link = link_in(outbox(settings)[-1])
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == settings.issuer
    return parts.path


def test_an_export_is_prepared_in_the_background_and_downloaded(
    client: TestClient, settings: Settings, member: object
) -> None:
    login(client)
    path = _prepare(client, settings)
    page = client.get("/account/data")
    assert "Télécharger mon archive" in page.text and 'href="/account/data/export/' in page.text
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert json.loads(response.text)["profile"]["email"] == "alice@example.org"


def test_a_forged_export_link_gets_a_clear_400_page(client: TestClient, settings: Settings, member: object) -> None:
    login(client)
    path = _prepare(client, settings)
    forged = client.get(path[:-3] + ("xyz" if not path.endswith("xyz") else "abc"))
    assert forged.status_code == 400 and "lien de téléchargement est invalide" in forged.text
    assert client.get("/account/data/export/n'importe-quoi").status_code == 400


def test_an_expired_export_link_gets_a_clear_410_page(
    client: TestClient, settings: Settings, member: object, monkeypatch: MonkeyPatch
) -> None:
    login(client)
    path = _prepare(client, settings)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 25 * 3600)
    old = client.get("/account/data")  # the page signs the link anew: make it 25 hours old
    monkeypatch.undo()
    assert path not in old.text
    path = old.text.split('href="/account/data/export/', 1)[1].split('"', 1)[0]
    path = f"/account/data/export/{path}"
    response = client.get(path)
    assert response.status_code == 410 and "a expiré" in response.text


def test_another_member_cannot_open_my_export_link(client: TestClient, settings: Settings, member: object) -> None:
    login(client)
    path = _prepare(client, settings)
    create_member(settings, email="bob@example.org", name="Bob")
    client.cookies.clear()
    login(client, "bob@example.org")
    response = client.get(path)
    assert response.status_code == 403 and "autre compte" in response.text


def test_opening_the_link_logged_out_asks_to_log_in_first(
    client: TestClient, settings: Settings, member: object
) -> None:
    login(client)
    path = _prepare(client, settings)
    client.cookies.clear()
    response = client.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_page_says_the_archive_is_being_prepared(settings: Settings, member: object) -> None:
    quiet = settings.replace(privacy_jobs_interval_seconds=0)  # no background jobs: it stays pending
    with TestClient(create_app(quiet, migrate=False), base_url=BASE_URL, follow_redirects=False) as client:
        login(client)
        submit(client, "/account/data", "/account/data/export", {})
        submit(client, "/account/data", "/account/data/export", {})  # a second click: the same request
        assert "Archive en préparation" in client.get("/account/data").text
    assert db_call(settings, lambda s: s.exec(select(DataExport.status)).all()) == ["pending"]
