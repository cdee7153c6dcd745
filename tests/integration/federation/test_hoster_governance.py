"""The federation governs its hosters, through the pages and the API, with the mails they send:
suspending a hoster suspends its nodes through the single-node path (members logged out and told,
logins refused) and tells the organizations served; reinstating brings back only the nodes suspended
with it; exclusion retires them all; a refused hoster applies again; a new charter version must be
accepted within the grace period, shown on the hoster's page, or the hoster is suspended."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.federation import governance
from tests.conftest import BASE_URL, create_member, csrf_from, login, make_settings, outbox
from tests.federation_factories import add_hoster, add_membership, in_db
from tests.integration.federation.test_api import P, call
from tests.integration.federation.test_hoster_flow import instance_row
from tests.integration.federation.test_node_lifecycle import hoster_and_admin, register, subjects
from tests.integration.federation.test_organization_control import approved_node, decide
from tests.oidc_flow import Flow
from tests.stub_server import StubServer


def test_a_suspended_hoster_takes_its_nodes_along_and_everyone_concerned_is_told(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    for email, role in (("carol@example.org", "admin"), ("dave@example.org", "member")):
        create_member(settings, email, email.split("@")[0].title())
        add_membership(settings, "tiess", email, role)
    slug, client_id, secret = approved_node(client, alice, admin, hoster, stub_server)
    pending = register(client, alice, hoster, "matrix", f"{stub_server.url}/chat").json()["slug"]
    redirect_uri = f"{stub_server.url}/apps/user_oidc/code"
    page = client.get(f"/federation/hosters/{hoster}")
    issued = client.post(f"/federation/hosters/{hoster}/api-client", data={"csrf_token": csrf_from(page.text)})
    api_id = re.search(r'id="client-id">([^<]+)<', issued.text).group(1)  # type: ignore[union-attr]
    api_secret = re.search(r'id="client-secret">([^<]+)<', issued.text).group(1)  # type: ignore[union-attr]

    def api_token() -> int:
        data = {"grant_type": "client_credentials", "scope": "federation:read"}
        return client.post("/token", data=data, auth=(api_id, api_secret)).status_code

    assert api_token() == 200
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as carol:
        login(carol, "carol@example.org")
        assert decide(carol, slug, "accept").status_code == 303
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as dave:
        login(dave, "dave@example.org")
        flow = Flow(dave, client_id, secret, redirect_uri=redirect_uri)
        assert "code" in flow.code()  # dave uses the tool (consent recorded)

        with TestClient(app, base_url=BASE_URL, follow_redirects=False) as ada:
            login(ada, "admin@example.org")
            page = ada.get("/federation/admin")
            form = {"csrf_token": csrf_from(page.text), "action": "suspend"}
            no_reason = ada.post(f"/federation/admin/hosters/{hoster}/governance", data=form)
            assert no_reason.status_code == 400
            done = ada.post(f"/federation/admin/hosters/{hoster}/governance", data={**form, "reason": "Audit"})
            assert done.status_code == 303
        node = instance_row(settings, slug)
        assert node.status == "suspended" and node.extra.get("with_hoster")
        assert "est suspendu" in dave.get("/").text  # dave is told in the portal's inbox
        assert flow.authorize().status_code == 400  # logins through the node are refused
        assert api_token() == 401  # and the hoster's own API client is disabled
        for address in ("tech@coop.example", "carol@example.org"):
            assert any("Hébergeur suspendu" in s for s in subjects(settings, address)), address
        told = [m for m in outbox(settings) if str(m["To"]) == "carol@example.org" and "suspendu" in str(m["Subject"])]
        assert "nextcloud TIESS" in told[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]

        reinstated = call(client, "POST", f"{P}/hosters/{hoster}/reinstate", admin, {})
        assert reinstated.status_code == 200 and reinstated.json()["status"] == "active"
        assert instance_row(settings, slug).status == "active" and "code" in flow.code()
        assert api_token() == 200
        assert any("Hébergeur rétabli" in s for s in subjects(settings, "carol@example.org"))

    assert call(client, "POST", f"{P}/hosters/{hoster}/exclude", alice, {"reason": "x"}).status_code == 403
    excluded = call(client, "POST", f"{P}/hosters/{hoster}/exclude", admin, {"reason": "Charte violée"})
    assert excluded.status_code == 200 and excluded.json()["status"] == "excluded"
    assert {instance_row(settings, s).status for s in (slug, pending)} == {"retired"}
    assert any("Hébergeur exclu" in s for s in subjects(settings, "tech@coop.example"))
    assert call(client, "POST", f"{P}/hosters/{hoster}/reinstate", admin, {}).status_code == 409
    assert register(client, alice, hoster, "matrix", f"{stub_server.url}/chat").status_code == 409  # not active


def test_a_refused_hoster_applies_again(app: Any, client: TestClient, member: Member, settings: Settings) -> None:
    login(client)
    create_member(settings, "admin@example.org", "Ada Admin", is_admin=True)
    page = client.get("/federation/hosters/apply")
    applied = client.post(
        "/federation/hosters/apply",
        data={"csrf_token": csrf_from(page.text), "name": "Coop Bis", "contact_email": "bis@coop.example",
              "accept_charter": "on"},
    )  # fmt: skip
    slug = applied.headers["location"].rsplit("/", 1)[-1]
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as ada:
        login(ada, "admin@example.org")
        admin_page = ada.get("/federation/admin")
        refused = ada.post(
            f"/federation/admin/hosters/{slug}",
            data={"csrf_token": csrf_from(admin_page.text), "decision": "refuse", "reason": "Statuts à fournir"},
        )
        assert refused.status_code == 303
    hoster_page = client.get(f"/federation/hosters/{slug}")
    assert 'id="reapply"' in hoster_page.text
    token = csrf_from(hoster_page.text)
    without = client.post(f"/federation/hosters/{slug}/reapply", data={"csrf_token": token})
    assert without.status_code == 400 and "charte" in without.text
    again = client.post(f"/federation/hosters/{slug}/reapply", data={"csrf_token": token, "accept_charter": "on"})
    assert again.status_code == 303
    assert any("Nouvelle demande de Coop Bis" in s for s in subjects(settings, "admin@example.org"))
    assert (
        client.post(
            f"/federation/hosters/{slug}/reapply", data={"csrf_token": token, "accept_charter": "on"}
        ).status_code
        == 409
    )


def test_a_new_charter_must_be_accepted_within_the_grace_period(
    client: TestClient, tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path, database_url, federation_charter_version="2027-01", federation_charter_grace_days=0
    )
    create_member(settings, "alice@example.org", "Alice")
    create_member(settings, "bob@example.org", "Bob")
    add_hoster(settings, "coop", "alice@example.org")  # accepted charter 2026-11
    add_hoster(settings, "late", "bob@example.org")
    assert in_db(settings, lambda s: governance.charter_sweep(s, settings)) == 0  # deadlines given, mailed
    assert any("Nouvelle charte à accepter" in s for s in subjects(settings, "alice@example.org"))
    with TestClient(create_app(settings, migrate=False), base_url=BASE_URL, follow_redirects=False) as web:
        login(web, "alice@example.org")
        page = web.get("/federation/hosters/coop")
        assert 'id="charter"' in page.text and "2027-01" in page.text
        accepted = web.post("/federation/hosters/coop/charter", data={"csrf_token": csrf_from(page.text)})
        assert accepted.status_code == 303
        assert 'id="charter"' not in web.get("/federation/hosters/coop").text
    assert in_db(settings, lambda s: governance.charter_sweep(s, settings)) == 1  # "late" is past its date
    assert any("Hébergeur suspendu" in s for s in subjects(settings, "bob@example.org"))
