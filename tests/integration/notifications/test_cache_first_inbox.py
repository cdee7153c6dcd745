"""The cache-first inbox: the page is drawn from stored notifications with "mis à jour il y a N min"
per tool, starts a background refresh of stale sources and never waits for an instance; what the
refresh brings is stored (and announced to the live stream) after the page has answered."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.db import Database, utcnow
from portail.federation.models import Instance
from portail.notifications import inbox
from portail.notifications.models import SourceState
from tests.conftest import login
from tests.fakes.instances import Instances
from tests.fakes.server import serve


@pytest.fixture
def feeds(app: Starlette, member: Member) -> Iterator[tuple[Instances, dict[str, int]]]:
    """Two feeds the member follows: "calme" read 10 minutes ago, "bloque" never read and hanging."""
    fake = Instances(modes={"bloque": "hang"})
    with serve(fake.app()) as base_url:
        fake.base_url = base_url
        db: Database = app.state.db
        ids: dict[str, int] = {}
        with db.session() as session:
            for name in ("calme", "bloque"):
                instance = Instance(
                    slug=name,
                    name=name.capitalize(),
                    software="praxis",
                    base_url=f"{base_url}/i/{name}",
                    feed_url=f"{base_url}/i/{name}/feed",
                    status="active",
                )
                session.add(instance)
                session.flush()
                ids[name] = instance.id or 0
                inbox.set_preference(session, member.id or 0, ids[name], enabled=True, digest="none")
            session.add(SourceState(instance_id=ids["calme"], fetched_at=utcnow() - dt.timedelta(minutes=10)))
            inbox.deliver(
                session,
                [{"member_id": member.id, "instance_id": ids["calme"], "external_id": "old", "title": "Déjà reçue"}],
            )
        hub = app.state.notifications
        hub.aggregator.settings = hub.settings.replace(notification_refresh_seconds=3600, outbound_timeout_seconds=5)
        yield fake, ids


def test_the_inbox_answers_from_storage_and_leaves_the_hanging_tool_to_the_background(
    client: TestClient, app: Starlette, member: Member, feeds: tuple[Instances, dict[str, int]]
) -> None:
    fake, _ids = feeds
    login(client)
    page = client.get("/notifications")
    assert page.status_code == 200
    assert "Déjà reçue" in page.text
    # pulled 10 min before the fixture ended; a slow machine may take a minute more to get here
    assert re.search(r"<strong>Calme</strong> : mis à jour il y a 1[01] min", page.text)
    assert "<strong>Bloque</strong> : mise à jour en cours" in page.text
    # The page answered while the hanging feed's pull was still running in the background.
    assert app.state.notifications.aggregator.refreshing(member.id)
    deadline = time.monotonic() + 10
    while "bloque" not in fake.hits and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.hits.get("bloque") == 1
    assert "calme" not in fake.hits  # fresh enough: not asked again
    assert client.get("/notifications").status_code == 200  # a second look does not start a second pull
    assert fake.hits.get("bloque") == 1


def test_what_the_background_refresh_brings_is_stored_after_the_page(
    client: TestClient, app: Starlette, member: Member, feeds: tuple[Instances, dict[str, int]]
) -> None:
    fake, ids = feeds
    fake.modes["bloque"] = "ok"
    login(client)
    assert client.get("/notifications").status_code == 200  # starts the refresh, does not wait for it
    db: Database = app.state.db
    deadline = time.monotonic() + 20
    titles: set[str] = set()
    while time.monotonic() < deadline and "Note 0 de bloque" not in titles:
        with db.session() as session:
            titles = {n.title for n, _tool in inbox.list_for(session, member.id or 0, inbox.Filters(limit=50))}
        time.sleep(0.05)
    assert "Note 0 de bloque" in titles
    with db.session() as session:
        state = session.exec(
            select(SourceState).where(SourceState.instance_id == ids["bloque"], SourceState.member_id == None)  # noqa: E711
        ).one()
    assert state.status == "ok" and state.fetched_at is not None
    assert "<strong>Bloque</strong> : mis à jour à l’instant" in client.get("/notifications").text
