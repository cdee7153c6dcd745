"""Journey: a hoster proves its node by DNS, loses the record, and the federation hears of it.

Portail is deployed as an operator deploys it (``portail serve``, settings in the environment) with
its DNS resolvers pointing to a real DNS server on loopback (tests/dns_server.py) standing in for
the hoster's zone, and its prober re-checking proofs every couple of seconds
(``proof_recheck_hours`` and ``proof_grace_days`` are fractions here). A member applies as a hoster,
the printed administrator accepts; the hoster registers a Nextcloud node at a name, reads on the
node's page the exact TXT record to create, chooses "DNS" — refused while the record is missing,
with the reason on the page — then creates it and the node is proven; the administrator approves
it with the CLI. The record disappears: the hoster is mailed, then, after the grace period, the
federation administrators (mail and their desk). The record comes back: the node is restored and
both are told; ``portail instances proof --json`` says so.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from tests.dns_server import LoopbackDNS
from tests.journeys.conftest import Deployment, sign_up

HOST = "nuage.coop-quartier.test"
RECORD = f"_portail-challenge.{HOST}"
INSTANCES = """
[[organizations]]
slug = "quartier-centre"
name = "Table de quartier du Centre"
"""


@pytest.fixture(scope="module")
def zone() -> Iterator[LoopbackDNS]:
    server = LoopbackDNS()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployed(request: pytest.FixtureRequest, tmp_path: Path, zone: LoopbackDNS) -> Iterator[Deployment]:
    zone.clear()
    url = request.getfixturevalue("fresh_postgres") if request.param == "postgres" else None
    deployment = Deployment(tmp_path, url)
    deployment.env.update(
        PORTAIL_DNS_RESOLVERS=zone.resolvers,
        PORTAIL_DNS_TIMEOUT_SECONDS="1",
        PORTAIL_PROBE_INTERVAL_SECONDS="1",
        PORTAIL_PROOF_RECHECK_HOURS="0.0005",  # 1.8 s
        PORTAIL_PROOF_GRACE_DAYS="0.00005",  # 4.3 s
    )
    try:
        yield deployment
    finally:
        deployment.close()


def wait_for_subject(deployment: Deployment, address: str, fragment: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(fragment in str(m["Subject"]) for m in deployment.mails_to(address)):
            return
        time.sleep(0.2)
    subjects = [str(m["Subject"]) for m in deployment.mails_to(address)]
    raise AssertionError(f"no mail {fragment!r} to {address}; found {subjects}")


def test_a_node_proven_by_dns_that_loses_its_record_is_flagged_then_restored(
    deployed: Deployment, zone: LoopbackDNS
) -> None:
    deployed.write_instances(INSTANCES)
    deployed.start()
    admin = deployed.admin()

    hoster = sign_up(deployed, "technique@coop-quartier.example", name="Coop du quartier")
    hoster.login("technique@coop-quartier.example")
    applied = hoster.submit(
        "/federation/hosters/apply",
        data={"name": "Coop du quartier", "contact_email": "technique@coop-quartier.example", "region": "06",
              "accept_charter": "on"},
    )  # fmt: skip
    assert applied.status_code == 303, applied.text[:1000]
    slug = applied.headers["location"].rsplit("/", 1)[1]
    deployed.cli("hosters", "approve", slug)
    assert hoster.get(f"/federation/hosters/{slug}/nodes/new").status_code == 303  # a second factor first
    hoster.enrol_authenticator_app()

    registered = hoster.submit(
        f"/federation/hosters/{slug}/nodes/new",
        data={"software": "nextcloud", "name": "Nuage du quartier", "base_url": f"https://{HOST}",
              "scope": "organization", "organization": "quartier-centre"},
    )  # fmt: skip
    assert registered.status_code == 303, registered.text[:1000]
    node = registered.headers["location"]
    node_slug = node.rsplit("/", 1)[1]
    page = hoster.get(node).text
    name = re.search(r'<code id="dns-record-name">([^<]+)</code>', page)
    value = re.search(r'<code id="dns-record-value">([^<]+)</code>', page)
    assert name and value, page[:2000]
    assert unescape(name.group(1)) == RECORD

    missing = hoster.submit(node, f"{node}/verify", data={"method": "dns"})
    assert missing.status_code == 422 and "NXDOMAIN" in missing.text
    zone.txt(RECORD, unescape(value.group(1)))
    proven = hoster.submit(node, f"{node}/verify", data={"method": "dns"})
    assert proven.status_code == 303, proven.text[:1000]
    deployed.cli("instances", "approve", node_slug)

    # the record disappears: the prober's re-check tells the hoster, then the federation
    zone.remove(RECORD)
    wait_for_subject(deployed, "technique@coop-quartier.example", "Preuve de contrôle perdue")
    wait_for_subject(deployed, deployed.admin_email, "Nœud sans preuve de contrôle")
    assert f'id="proof-alert-{node_slug}"' in admin.get("/federation/admin").text
    assert "signalé à la fédération" in hoster.get(f"/federation/hosters/{slug}").text

    # it comes back: restored, both told
    zone.txt(RECORD, unescape(value.group(1)))
    wait_for_subject(deployed, "technique@coop-quartier.example", "Preuve de contrôle rétablie")
    wait_for_subject(deployed, deployed.admin_email, "Preuve de contrôle rétablie")
    listed = json.loads(deployed.cli("instances", "proof", "--json").stdout)
    row = next(r for r in listed if r["slug"] == node_slug)
    assert (row["method"], row["state"]) == ("dns", "ok")
