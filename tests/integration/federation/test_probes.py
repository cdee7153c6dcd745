"""The health prober against real local servers standing in for nodes: Nextcloud ``/status.php``,
Synapse ``/_matrix/client/versions``, NodeInfo, and slow, redirecting, oversized and garbage answers;
the failure threshold that mails the hoster; and pages that never wait for a probe (one leader among
several processes: ``tests/integration/test_background.py``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import AuditEvent
from portail.app import create_app
from portail.config import Settings
from portail.db import Database
from portail.federation import probes
from portail.federation.models import Instance
from portail.federation.probes import Result, Target
from tests.conftest import BASE_URL, outbox
from tests.federation_factories import add_hoster, add_instance, in_db
from tests.stub_server import StubServer


@pytest.fixture
def fast(unit_settings: Settings) -> Settings:
    return unit_settings.replace(outbound_timeout_seconds=1.0, outbound_max_bytes=20_000, probe_failures_before_alert=2)


def probe(settings: Settings, software: str, url: str) -> Result:
    return asyncio.run(probes.probe(settings, Target(1, "x", software, url)))


def test_nextcloud_status_gives_health_and_version(fast: Settings, stub_server: StubServer) -> None:
    stub_server.route("/status.php", {"installed": True, "maintenance": False, "versionstring": "29.0.4"})
    result = probe(fast, "nextcloud", stub_server.url)
    assert result.up and result.version == "29.0.4" and result.latency_ms is not None


def test_nextcloud_in_maintenance_or_answering_garbage_is_down(fast: Settings, stub_server: StubServer) -> None:
    stub_server.route("/status.php", {"installed": True, "maintenance": True, "versionstring": "29.0.4"})
    assert not probe(fast, "nextcloud", stub_server.url).up
    stub_server.route("/status.php", "<html>Oups</html>")
    garbage = probe(fast, "nextcloud", stub_server.url)
    assert not garbage.up and "not JSON" in garbage.error
    stub_server.route("/status.php", "fail", status=503)
    assert "503" in probe(fast, "nextcloud", stub_server.url).error


def test_synapse_client_versions_give_health_and_the_federation_api_its_version(
    fast: Settings, stub_server: StubServer
) -> None:
    stub_server.route("/_matrix/client/versions", {"versions": ["v1.10", "v1.11"]})
    result = probe(fast, "matrix", stub_server.url)
    assert result.up and result.version is None  # spec versions are not the server's version
    stub_server.route("/_matrix/federation/v1/version", {"server": {"name": "Synapse", "version": "1.163.2"}})
    assert probe(fast, "matrix", stub_server.url).version == "Synapse 1.163.2"
    stub_server.route("/_matrix/client/versions", {"versions": "nope"})
    assert not probe(fast, "matrix", stub_server.url).up


def test_nodeinfo_gives_the_software_version_when_published(fast: Settings, stub_server: StubServer) -> None:
    stub_server.route("/", "<html>accueil</html>")
    assert probe(fast, "other", stub_server.url).version is None
    stub_server.route("/.well-known/nodeinfo", {"links": [
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": f"{stub_server.url}/nodeinfo/2.0"},
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": f"{stub_server.url}/nodeinfo/2.1"},
    ]})  # fmt: skip
    stub_server.route(
        "/nodeinfo/2.1",
        {
            "version": "2.1",
            "software": {"name": "mobilizon", "version": "4.1.0"},
            "protocols": ["activitypub"],
            "openRegistrations": False,
        },
    )
    result = probe(fast, "other", stub_server.url)
    assert result.up and result.version == "mobilizon 4.1.0"


def test_nodeinfo_pointing_to_a_forbidden_address_is_ignored(tmp_path: Path, stub_server: StubServer) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, "sqlite://", allow_private_addresses=True, outbound_timeout_seconds=1.0)
    stub_server.route("/", "ok")
    stub_server.route(
        "/.well-known/nodeinfo",
        {
            "links": [
                {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "http://169.254.169.254/latest/"}
            ]
        },
    )
    result = probe(settings, "other", stub_server.url)
    assert result.up and result.version is None


def test_slow_oversized_and_redirect_loops_count_as_down(fast: Settings, stub_server: StubServer) -> None:
    stub_server.route("/status.php", {"installed": True}, delay=2)
    assert probe(fast, "nextcloud", stub_server.url).error.startswith("timeout")
    stub_server.route("/status.php", size=5_000_000)
    assert probe(fast, "nextcloud", stub_server.url).error.startswith("too-large")
    stub_server.route("/status.php", status=302, location="/status.php")
    assert probe(fast, "nextcloud", stub_server.url).error.startswith("redirects")


def test_consecutive_failures_flag_the_hoster_once_and_recovery_is_announced(
    fast: Settings, db: Database, stub_server: StubServer
) -> None:
    add_hoster(fast, "coop")
    add_instance(fast, "nuage", hoster="coop", software="nextcloud", base_url=stub_server.url)
    stub_server.route("/status.php", "boom", status=500)
    for _ in range(3):
        asyncio.run(probes.run_round(fast, db))
    row = in_db(fast, lambda s: s.exec(select(Instance)).one())
    assert (row.health, row.consecutive_failures) == ("down", 3)
    assert row.down_notified_at is not None and "500" in row.last_probe_error
    down_mail = [m for m in outbox(fast) if "injoignable" in str(m["Subject"])]
    assert [m["To"] for m in down_mail] == ["contact@coop.example"]

    stub_server.route("/status.php", {"installed": True, "maintenance": False, "versionstring": "30.0.1"})
    asyncio.run(probes.run_round(fast, db))
    row = in_db(fast, lambda s: s.exec(select(Instance)).one())
    assert (row.health, row.consecutive_failures, row.software_version) == ("up", 0, "30.0.1")
    assert row.down_notified_at is None
    assert any("de nouveau joignable" in str(m["Subject"]) for m in outbox(fast))
    actions = in_db(fast, lambda s: [e.action for e in s.exec(select(AuditEvent))])
    assert actions == ["instance.down_flagged", "instance.up_again"]


def test_only_active_instances_are_probed_within_the_concurrency_bound(
    fast: Settings, db: Database, stub_server: StubServer
) -> None:
    settings = fast.replace(probe_concurrency=2)
    stub_server.route("/", "ok", delay=0.3)
    for n in range(6):
        add_instance(settings, f"site-{n}", base_url=f"{stub_server.url}/s{n}")
        stub_server.route(f"/s{n}/", "ok", delay=0.3)
    add_instance(settings, "suspended", base_url=f"{stub_server.url}/gone", status="suspended")
    results = asyncio.run(probes.run_round(settings, db))
    assert sorted(t.slug for t, _r in results) == [f"site-{n}" for n in range(6)]
    assert all(r.up for _t, r in results)
    assert stub_server.max_active == 2
    assert not any(path.startswith("/gone") for _m, path, _h in stub_server.hits)


def test_demo_entries_are_never_probed_and_a_first_success_is_remembered(
    fast: Settings, db: Database, stub_server: StubServer
) -> None:
    stub_server.route("/", "ok")
    add_instance(fast, "vraie", base_url=stub_server.url)
    add_instance(fast, "fictive")  # https://fictive.example: reserved, can never resolve
    results = asyncio.run(probes.run_round(fast, db))
    assert [t.slug for t, _r in results] == ["vraie"]
    rows = {i.slug: i for i in in_db(fast, lambda s: list(s.exec(select(Instance))))}
    assert rows["vraie"].last_up_at is not None and rows["vraie"].last_up_at == rows["vraie"].last_probe_at
    assert rows["fictive"].last_probe_at is None and rows["fictive"].health == "unknown"


# ---------------------------------------------------------------- in the application


def test_the_prober_runs_in_the_lifespan_and_pages_never_wait_for_it(
    unit_settings: Settings, stub_server: StubServer
) -> None:
    """While a probe is stuck on a slow node, the directory answers from what is stored."""
    # A 3 s answer with room to spare under the timeout: on a loaded machine 4 s was sometimes too little.
    settings = unit_settings.replace(probe_interval_seconds=1, outbound_timeout_seconds=10.0)
    add_instance(settings, "lent", base_url=stub_server.url, software="nextcloud")
    stub_server.route("/status.php", {"installed": True, "maintenance": False, "versionstring": "1"}, delay=3)
    with TestClient(create_app(settings, migrate=False), base_url=BASE_URL) as client:
        for _ in range(200):
            if stub_server.hits:
                break
            time.sleep(0.05)
        assert stub_server.hits, "the prober never reached the node"
        page = client.get("/federation/directory.json")
        assert page.status_code == 200
        assert page.json()["instances"][0]["last_probe_at"] is None  # answered before the probe finished
        for _ in range(400):
            if in_db(settings, lambda s: s.exec(select(Instance)).one().last_probe_at):
                break
            time.sleep(0.05)
    row = in_db(settings, lambda s: s.exec(select(Instance)).one())
    assert row.health == "degraded" and row.software_version == "1"  # reached, in 3 s: over probe_degraded_ms
