"""Proof of control of a node's domain, through the pages, the API and the CLI, with the mails they
send: the hoster chooses HTTP or DNS (the exact TXT record shown), every bad DNS answer gets its own
message, the proof is re-checked periodically (``proof_recheck.recheck_due``), a lost proof is told
to the hoster, then after ``proof_grace_days`` to the federation administrators (mail, their desk,
the hoster's page), and a proof that comes back restores the node. Nodes approved before the
re-check existed are not flagged falsely. The DNS answers come from a real DNS server on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.federation import proof_recheck
from portail.federation.models import Instance
from tests.conftest import csrf_from, login, mail_text, make_settings, outbox
from tests.dns_server import LoopbackDNS
from tests.federation_factories import add_hoster, add_instance, in_db
from tests.integration.federation.test_api import P, call
from tests.integration.federation.test_hoster_flow import instance_row
from tests.integration.federation.test_node_lifecycle import active_node, hoster_and_admin, register, subjects
from tests.integration.test_cli import portail
from tests.stub_server import StubServer

HOST = "nuage.coop.test"
RECORD = f"_portail-challenge.{HOST}"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[LoopbackDNS]:
    server = LoopbackDNS()
    yield server
    server.stop()


@pytest.fixture
def zone(dns_server: LoopbackDNS) -> LoopbackDNS:
    dns_server.clear()
    return dns_server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, zone: LoopbackDNS) -> Settings:
    return make_settings(tmp_path, database_url, dns_resolvers=zone.resolvers, dns_timeout_seconds=1.0)


def recheck(settings: Settings) -> int:
    handle = database.Database(settings)
    try:
        return asyncio.run(proof_recheck.recheck_due(settings, handle))
    finally:
        handle.dispose()


def age(settings: Settings, slug: str, *, lost_days: float = 0) -> None:
    """Make the node's re-check due (and, with ``lost_days``, move its loss back in time)."""

    def change(session: Session) -> None:
        row = session.exec(select(Instance).where(Instance.slug == slug)).one()
        row.proof_due_at = utcnow() - dt.timedelta(seconds=1)
        if lost_days and row.proof_lost_at is not None:
            row.proof_lost_at = row.proof_lost_at - dt.timedelta(days=lost_days)
        session.add(row)

    in_db(settings, change)


def post_form(client: TestClient, page: str, action: str, data: dict[str, str]) -> Any:
    return client.post(action, data={**data, "csrf_token": csrf_from(client.get(page).text)})


def test_a_hoster_proves_a_node_by_dns_and_a_lost_proof_goes_to_the_hoster_then_the_federation(
    client: TestClient, member: Member, app: Any, settings: Settings, zone: LoopbackDNS, tmp_path: Path
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    registered = register(client, alice, hoster, "nextcloud", f"https://{HOST}")
    assert registered.status_code == 201, registered.text
    node = registered.json()
    slug, token = node["slug"], node["challenge"]["token"]
    assert node["proof"]["publish"]["dns"]["name"] == RECORD
    page = f"/federation/instances/{slug}"
    shown = client.get(page).text
    assert f'<code id="dns-record-name">{RECORD}</code>' in shown
    assert f"{RECORD}. 300 IN TXT &#34;{token}&#34;" in shown or f'{RECORD}. 300 IN TXT "{token}"' in shown

    # every bad answer says what is wrong, on the page; nothing moves
    refusals = [
        (lambda: None, "NXDOMAIN"),
        (lambda: zone.cname(RECORD, "_portail-challenge.ailleurs.example"), "alias (CNAME)"),
        (lambda: zone.txt(RECORD, "portail-ancien", "portail-autre"), "2 enregistrements TXT"),
        (lambda: zone.txt(RECORD, ""), "est vide"),
        (lambda: zone.silent(RECORD), "n’a pas répondu"),
    ]
    for prepare, text in refusals:
        zone.remove(RECORD)
        prepare()
        refused = post_form(client, page, f"{page}/verify", {"method": "dns"})
        assert refused.status_code == 422, text
        assert text in refused.text, text
    assert instance_row(settings, slug).status == "awaiting-proof"
    unknown = post_form(client, page, f"{page}/verify", {"method": "ftp"})
    assert unknown.status_code == 400 and "Méthode de preuve inconnue" in unknown.text

    zone.txt(RECORD, "v=spf1 -all", token)
    proven = post_form(client, page, f"{page}/verify", {"method": "dns"})
    assert proven.status_code == 303, proven.text
    row = instance_row(settings, slug)
    assert (row.status, row.proof_method) == ("awaiting-approval", "dns")
    assert any("Nœud à approuver" in s for s in subjects(settings, "admin@example.org"))
    approved = call(client, "POST", f"{P}/instances/{slug}/approve", admin)
    assert approved.status_code == 200, approved.text
    assert recheck(settings) == 0  # just proven: not due before proof_recheck_hours

    # the DNS does not answer once: no verdict on the domain, asked again within the hour
    zone.silent(RECORD)
    age(settings, slug)
    assert recheck(settings) == 1
    doubted = instance_row(settings, slug)
    assert proof_recheck.state(doubted) == "ok" and (doubted.proof_failure or {}).get("code") == "dns-timeout"
    assert doubted.proof_due_at is not None and doubted.proof_due_at <= utcnow() + dt.timedelta(hours=1)
    assert not any("Preuve de contrôle" in str(m["Subject"]) for m in outbox(settings))

    # the record disappears: the hoster is told at the next re-check
    zone.remove(RECORD)
    age(settings, slug)
    assert recheck(settings) == 1
    assert proof_recheck.state(instance_row(settings, slug)) == "lost"
    lost = [m for m in outbox(settings) if "Preuve de contrôle perdue" in str(m["Subject"])]
    assert {str(m["To"]) for m in lost} == {"tech@coop.example", "alice@example.org"}
    assert "NXDOMAIN" in mail_text(lost[0])
    assert f'id="proof-alert-{slug}"' in client.get(f"/federation/hosters/{hoster}").text
    assert call(client, "GET", f"{P}/instances/{slug}", alice).json()["proof"]["state"] == "lost"

    # within the grace period the federation is not told
    age(settings, slug)
    assert recheck(settings) == 1
    assert not any("sans preuve" in s for s in subjects(settings, "admin@example.org"))
    with TestClient(app, base_url=str(client.base_url), follow_redirects=False) as desk:
        login(desk, "admin@example.org")
        assert f'id="proof-alert-{slug}"' not in desk.get("/federation/admin").text
        # after proof_grace_days it is: mail, the administrators' desk and the hoster's page
        age(settings, slug, lost_days=settings.proof_grace_days)
        assert recheck(settings) == 1
        assert proof_recheck.state(instance_row(settings, slug)) == "escalated"
        assert any("Nœud sans preuve de contrôle" in s for s in subjects(settings, "admin@example.org"))
        assert f'id="proof-alert-{slug}"' in desk.get("/federation/admin").text
    assert "signalé à la fédération" in client.get(f"/federation/hosters/{hoster}").text

    # the CLI lists it, and cannot restore it while the record is missing
    env = {"PORTAIL_DNS_RESOLVERS": zone.resolvers, "PORTAIL_DNS_TIMEOUT_SECONDS": "1",
           "PORTAIL_SECRET_KEY": settings.secret_key, "PORTAIL_ALLOW_HTTP_INSTANCES": "true",
           "PORTAIL_ALLOW_PRIVATE_ADDRESSES": "true"}  # fmt: skip
    listed = portail(tmp_path, settings.database_url, "instances", "proof", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    mine = next(r for r in json.loads(listed.stdout) if r["slug"] == slug)
    assert (mine["method"], mine["state"]) == ("dns", "escalated")
    failed = portail(tmp_path, settings.database_url, "instances", "verify", slug, "--method", "dns", **env)
    assert failed.returncode == 1 and "NXDOMAIN" in failed.stderr and " / " in failed.stderr

    # the record is back: checked from the page, the node is restored and both are told
    zone.txt(RECORD, token)
    restored = post_form(client, page, f"{page}/proof", {"method": "dns"})
    assert restored.status_code == 303, restored.text
    assert proof_recheck.state(instance_row(settings, slug)) == "ok"
    for address in ("tech@coop.example", "admin@example.org"):
        assert any("Preuve de contrôle rétablie" in s for s in subjects(settings, address)), address
    assert f'id="proof-alert-{slug}"' not in client.get(f"/federation/hosters/{hoster}").text
    again = portail(tmp_path, settings.database_url, "instances", "verify", slug, "--method", "dns", **env)
    assert again.returncode == 0 and "DNS" in again.stdout, again.stderr


def test_the_api_checks_a_proof_now_switches_method_and_answers_json_errors(
    client: TestClient, member: Member, app: Any, settings: Settings, zone: LoopbackDNS, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "matrix", stub_server)  # proven over HTTP
    view = call(client, "GET", f"{P}/instances/{slug}", alice).json()["proof"]
    assert (view["method"], view["state"]) == ("http", "ok")
    assert view["publish"]["dns"]["unavailable"]["code"] == "dns-ip"  # 127.0.0.1 has no DNS name

    check = f"{P}/instances/{slug}/proof/check"
    ip_only = call(client, "POST", check, alice, {"method": "dns"})
    assert ip_only.status_code == 422
    assert ip_only.json()["error"] == "verification_failed"
    assert "IP address" in ip_only.json()["error_description"]
    bad = call(client, "POST", check, alice, {"method": "ftp"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert call(client, "POST", check, alice, {"method": ["dns"]}).status_code == 400
    assert call(client, "POST", f"{P}/instances/nowhere/proof/check", alice, {}).status_code == 404

    # the node answers 503 twice in a row: a doubt, then a loss
    stub_server.route("/.well-known/portail-challenge", "", status=503)
    age(settings, slug)
    assert recheck(settings) == 1
    assert call(client, "GET", f"{P}/instances/{slug}", alice).json()["proof"]["state"] == "ok"
    age(settings, slug)
    assert recheck(settings) == 1
    assert call(client, "GET", f"{P}/instances/{slug}", alice).json()["proof"]["state"] == "lost"
    assert any("Preuve de contrôle perdue" in s for s in subjects(settings, "tech@coop.example"))
    assert call(client, "POST", check, alice, {}).status_code == 422  # still 503

    # the challenge disappears from the node: still lost, restored by a check now
    stub_server.route("/.well-known/portail-challenge", "", status=404)
    age(settings, slug)
    assert recheck(settings) == 1
    assert call(client, "GET", f"{P}/instances/{slug}", alice).json()["proof"]["state"] == "lost"
    still = call(client, "POST", check, alice, {})
    assert still.status_code == 422 and "404" in still.json()["error_description"]
    token = instance_row(settings, slug).challenge or ""
    stub_server.route("/.well-known/portail-challenge", token)
    passed = call(client, "POST", check, alice, {})
    assert passed.status_code == 200, passed.text
    assert passed.json()["proof"]["state"] == "ok" and passed.json()["proof"]["error"] is None
    assert any("Preuve de contrôle rétablie" in s for s in subjects(settings, "tech@coop.example"))
    assert not any("sans preuve" in s for s in subjects(settings, "admin@example.org"))  # never escalated

    retired = call(client, "POST", f"{P}/instances/{slug}/retire", alice, {"reason": "fin"})
    assert retired.status_code == 200
    assert call(client, "POST", check, alice, {}).status_code == 409

    doc = client.get("/api/v1/openapi.json").json()
    assert "post" in doc["paths"][f"{P}/instances/{{slug}}/proof/check"]


def test_nodes_approved_before_the_recheck_are_invited_not_flagged_and_declared_ones_are_left_alone(
    client: TestClient, member: Member, app: Any, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "matrix", stub_server)

    def as_before_the_upgrade(session: Session) -> None:  # what migration federation_0011 leaves
        row = session.exec(select(Instance).where(Instance.slug == slug)).one()
        row.proof_ok_at = row.proof_checked_at = row.proof_due_at = None
        session.add(row)

    in_db(settings, as_before_the_upgrade)
    add_hoster(settings, "declarant")
    add_instance(settings, "declared-node", hoster="declarant")  # as instances.toml declares: no challenge
    stub_server.route("/.well-known/portail-challenge", "", status=404)  # the hoster removed it long ago
    assert recheck(settings) == 1  # only the registered node
    assert proof_recheck.state(instance_row(settings, slug)) == "unconfirmed"
    assert any("Gardez la preuve de contrôle" in s for s in subjects(settings, "tech@coop.example"))
    age(settings, slug, lost_days=30)
    assert recheck(settings) == 1
    invitations = [m for m in outbox(settings) if "Gardez la preuve" in str(m["Subject"])]
    assert len(invitations) == 2  # once (contact address and the hoster's administrator), not at every check
    assert not any("perdue" in str(m["Subject"]) or "sans preuve" in str(m["Subject"]) for m in outbox(settings))
    assert "à confirmer" in client.get(f"/federation/instances/{slug}").text

    stub_server.route("/.well-known/portail-challenge", instance_row(settings, slug).challenge or "")
    age(settings, slug)
    assert recheck(settings) == 1
    assert proof_recheck.state(instance_row(settings, slug)) == "ok"  # confirmed: from now on a loss is flagged
    assert not any("rétablie" in str(m["Subject"]) for m in outbox(settings))
    assert proof_recheck.state(instance_row(settings, "declared-node")) == "declared"


def test_a_node_moves_to_a_new_domain_proven_by_dns_before_it_serves_pages(
    client: TestClient, member: Member, app: Any, settings: Settings, zone: LoopbackDNS
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    node = register(client, alice, hoster, "nextcloud", f"https://{HOST}").json()
    slug = node["slug"]
    zone.txt(RECORD, node["challenge"]["token"])
    assert call(client, "POST", f"{P}/instances/{slug}/verify", alice, {"method": "dns"}).status_code == 200
    assert call(client, "POST", f"{P}/instances/{slug}/approve", admin).status_code == 200

    new_host = "fichiers.coop.test"
    new_record = f"_portail-challenge.{new_host}"
    page = f"/federation/instances/{slug}"
    asked = post_form(client, page, f"{page}/move", {"base_url": f"https://{new_host}"})
    assert asked.status_code == 303, asked.text
    shown = client.get(page).text
    assert f'<code id="move-dns-record-name">{new_record}</code>' in shown  # both ways, for the new host
    assert f'id="move-challenge-url">https://{new_host}/.well-known/portail-challenge<' in shown
    move = call(client, "GET", f"{P}/instances/{slug}", alice).json()["move"]
    assert move["proof"]["dns"]["name"] == new_record and move["proof"]["token"] == move["token"]

    # the old domain's record does not prove the new one; nothing moves
    refused = post_form(client, page, f"{page}/move/verify", {"method": "dns"})
    assert refused.status_code == 422 and "NXDOMAIN" in refused.text
    assert instance_row(settings, slug).base_url == f"https://{HOST}"
    unknown = call(client, "POST", f"{P}/instances/{slug}/move/verify", alice, {"method": "carrier-pigeon"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_request"

    zone.txt(new_record, move["token"])
    switched = call(client, "POST", f"{P}/instances/{slug}/move/verify", alice, {"method": "dns"})
    assert switched.status_code == 200, switched.text
    assert switched.json()["base_url"] == f"https://{new_host}"
    row = instance_row(settings, slug)
    assert (row.base_url, row.proof_method, row.challenge) == (f"https://{new_host}", "dns", move["token"])
    assert row.redirect_uris and all(uri.startswith(f"https://{new_host}/") for uri in row.redirect_uris)
