"""Health that says more: up, degraded (slower than ``probe_degraded_ms`` or a partial answer) or
down, with latency; the 30-day uptime on the directory (page and JSON) and the hoster's page."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation import availability, probes
from portail.federation.models import Instance, ProbeSample
from portail.federation.probes import Target
from tests.conftest import login
from tests.federation_factories import add_hoster, add_instance, in_db
from tests.stub_server import StubServer

STATUS = {"installed": True, "maintenance": False, "versionstring": "30.0.1"}


def test_a_slow_or_partial_answer_is_degraded_not_down(settings: Settings, stub_server: StubServer) -> None:
    stub_server.route("/status.php", STATUS)
    target = Target(1, "nuage", "nextcloud", stub_server.url)
    fine = asyncio.run(probes.probe(settings, target))
    assert (fine.state, fine.error) == ("up", "") and fine.latency_ms is not None
    slow = asyncio.run(probes.probe(settings.replace(probe_degraded_ms=-1), target))  # every answer is "slow"
    assert slow.state == "degraded" and slow.error.startswith("slow:")
    stub_server.route("/status.php", {**STATUS, "needsDbUpgrade": True})
    partial = asyncio.run(probes.probe(settings, target))
    assert partial.state == "degraded" and "partial answer" in partial.error


def test_thirty_day_uptime_on_the_directory_and_the_hosters_page(
    client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    add_hoster(settings, "coop", "alice@example.org")
    add_instance(settings, "nuage", hoster="coop", software="nextcloud", base_url=stub_server.url)
    db = Database(settings)
    try:
        for answer in (STATUS, {**STATUS, "needsDbUpgrade": True}):
            stub_server.route("/status.php", answer)
            asyncio.run(probes.run_round(settings, db))
        stub_server.route("/status.php", "boom", status=500)
        asyncio.run(probes.run_round(settings, db))
        stub_server.route("/status.php", {**STATUS, "needsDbUpgrade": True})
        asyncio.run(probes.run_round(settings, db))

        def old_sample(session):  # type: ignore[no-untyped-def]
            instance = session.exec(select(Instance)).one()
            session.add(ProbeSample(instance_id=instance.id, at=utcnow() - dt.timedelta(days=31), state="down"))

        in_db(settings, old_sample)
        asyncio.run(probes.run_round(settings, db))  # a fifth sample; the 31-day-old one is forgotten
    finally:
        db.dispose()
    row = in_db(settings, lambda s: s.exec(select(Instance)).one())
    assert availability.state(row) == "degraded" and row.consecutive_failures == 0
    assert in_db(settings, lambda s: len(s.exec(select(ProbeSample)).all())) == 5
    listed = client.get("/federation/directory.json").json()["instances"][0]
    assert (listed["availability"], listed["uptime_30d"]) == ("degraded", 80.0)
    page = client.get("/federation/directory").text
    assert "ralenti ou incomplet" in page and "80.0 % sur 30 jours" in page
    login(client)
    assert "80.0 % sur 30 jours" in client.get("/federation/hosters/coop").text
