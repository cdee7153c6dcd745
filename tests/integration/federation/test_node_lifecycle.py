"""A node's life after registration, through the pages and the API, with the mails they send: the
hoster edits it (the client and the configuration snippets follow), ``PATCH``/``DELETE`` on the
API, duplicates found on the normalized origin, an unproven registration that expires and releases
its URL, a retired node's URL released, and the federation reactivating a retired node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.dashboard.tiles import open_url
from portail.federation import lifecycle
from portail.oidc import clients
from tests.conftest import BASE_URL, create_member, csrf_from, login, mail_text, make_settings, outbox
from tests.federation_factories import add_organization, in_db
from tests.integration.federation.test_api import P, call, personal_token
from tests.integration.federation.test_hoster_flow import client_row, instance_row
from tests.stub_server import StubServer


def hoster_and_admin(app: Any, client: TestClient, settings: Settings) -> tuple[str, str, str]:
    """Alice applies as a hoster (API), the federation administrator accepts; returns both tokens and the hoster."""
    add_organization(settings, "tiess", "TIESS")
    create_member(settings, "admin@example.org", "Ada Admin", is_admin=True)
    login(client)
    alice = personal_token(client, ["federation:read", "federation:write"])
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as other:
        login(other, "admin@example.org")
        admin = personal_token(other, ["federation:read", "federation:write", "federation:admin"])
    body = {"name": "Coop Nuage", "contact_email": "tech@coop.example", "accept_charter": True}
    hoster = call(client, "POST", f"{P}/hosters", alice, body).json()["slug"]
    assert call(client, "POST", f"{P}/hosters/{hoster}/approve", admin).status_code == 200
    return alice, admin, hoster


def register(client: TestClient, token: str, hoster: str, software: str, base_url: str) -> Any:
    body = {"hoster": hoster, "software": software, "name": f"{software} TIESS", "base_url": base_url}
    return call(client, "POST", f"{P}/instances", token, {**body, "scope": "organization", "organization": "tiess"})


def active_node(client: TestClient, alice: str, admin: str, hoster: str, software: str, stub: StubServer) -> str:
    """Register, prove, approve and take the secret of a node served by ``stub``; returns its slug."""
    registered = register(client, alice, hoster, software, stub.url)
    assert registered.status_code == 201, registered.text
    node = registered.json()
    stub.route("/.well-known/portail-challenge", node["challenge"]["token"])
    assert call(client, "POST", f"{P}/instances/{node['slug']}/verify", alice).status_code == 200
    assert call(client, "POST", f"{P}/instances/{node['slug']}/approve", admin).status_code == 200
    assert call(client, "POST", f"{P}/instances/{node['slug']}/secret", alice).status_code == 200
    return str(node["slug"])


def subjects(settings: Settings, to: str) -> list[str]:
    return [str(m["Subject"]) for m in outbox(settings) if str(m["To"]) == to]


def test_a_hoster_edits_a_node_on_its_page_and_its_client_and_configuration_follow(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "nextcloud", stub_server)
    page = client.get(f"/federation/instances/{slug}/edit")
    assert page.status_code == 200 and 'name="nextcloud_provider_id"' in page.text
    values = {
        "csrf_token": csrf_from(page.text),
        "version": instance_row(settings, slug).updated_at.isoformat(),
        "name": "Nuage TIESS",
        "description": "Fichiers et agendas de TIESS",
        "login_url": f"{stub_server.url}/index.php/apps/user_oidc/login/3",
        "provider_identifier": "tiess",
        "nextcloud_provider_id": "3",
        "push_notifications": "false",
        "contact_email": "nuage@coop.example",
    }
    edited = client.post(f"/federation/instances/{slug}/edit", data=values)
    assert edited.status_code == 303, edited.text
    shown = client.get(f"/federation/instances/{slug}").text
    assert "Nuage TIESS" in shown and "Fichiers et agendas de TIESS" in shown
    assert "user_oidc:provider tiess" in shown  # the snippet, regenerated, the secret not shown again
    assert "&lt;SECRET-AFFICHÉ-UNE-SEULE-FOIS&gt;" in shown

    row = instance_row(settings, slug)
    assert open_url(row) == f"{stub_server.url}/index.php/apps/user_oidc/login/3"  # "Ouvrir" logs in at once
    assert row.extra["user_oidc_provider_id"] == 3 and row.contact_email == "nuage@coop.example"
    oauth = client_row(settings, row.client_id or "")
    assert oauth.name == "Nuage TIESS"
    assert oauth.backchannel_logout_uri == f"{stub_server.url}/index.php/apps/user_oidc/backchannel-logout/tiess"
    mails = [m for m in outbox(settings) if "Nœud modifié" in str(m["Subject"])]
    assert {str(m["To"]) for m in mails} == {"tech@coop.example", "alice@example.org"}
    assert "login_url" in mail_text(mails[0]) and "provider_identifier" in mail_text(mails[0])

    stale = client.post(f"/federation/instances/{slug}/edit", data={**values, "name": "Autre nom"})
    assert stale.status_code == 409 and "modifié entre-temps" in stale.text
    assert instance_row(settings, slug).name == "Nuage TIESS"
    elsewhere = client.post(
        f"/federation/instances/{slug}/edit",
        data={**values, "version": "", "login_url": "https://evil.example/login"},
    )
    assert elsewhere.status_code == 400 and "même origine" in elsewhere.text
    assert instance_row(settings, slug).login_url == values["login_url"]


def test_patch_and_delete_on_the_api_and_a_retired_nodes_url_is_released(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "matrix", stub_server)
    node = call(client, "GET", f"{P}/instances/{slug}", alice).json()
    patched = call(
        client, "PATCH", f"{P}/instances/{slug}", alice, {"provider_identifier": "coop", "version": node["version"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["changed"] == ["provider_identifier"]
    assert 'idp_id: "coop"' in patched.json()["snippets"][0]["text"]
    assert "<SECRET-AFFICHÉ-UNE-SEULE-FOIS>" in patched.json()["snippets"][0]["text"]
    assert any("Nœud modifié" in s for s in subjects(settings, "tech@coop.example"))
    stale = call(client, "PATCH", f"{P}/instances/{slug}", alice, {"name": "x", "version": node["version"]})
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    unknown = call(client, "PATCH", f"{P}/instances/{slug}", alice, {"base_url": "https://elsewhere.example"})
    assert unknown.status_code == 400 and "base_url" in unknown.json()["error_description"]
    assert call(client, "PATCH", f"{P}/instances/nowhere", alice, {"name": "x"}).status_code == 404
    bad_id = call(client, "PATCH", f"{P}/instances/{slug}", alice, {"nextcloud_provider_id": "un"})
    assert bad_id.status_code == 400

    port = stub_server.url.rsplit(":", 1)[1]
    for spelling in (f"http://localhost:{port}/.", f"http://[::ffff:127.0.0.1]:0{port}/"):
        assert register(client, alice, hoster, "other", spelling).status_code == 409, spelling

    assert call(client, "DELETE", f"{P}/instances/{slug}", alice).status_code == 400  # a reason is required
    retired = call(client, "DELETE", f"{P}/instances/{slug}?reason=moving", alice)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert client_row(settings, retired.json()["client_id"]).disabled_at is not None
    assert call(client, "PATCH", f"{P}/instances/{slug}", alice, {"name": "x"}).status_code == 409

    again = register(client, alice, hoster, "matrix", f"http://localhost:{port}/")
    assert again.status_code == 201, again.text  # the retired node released its URL
    held = call(client, "POST", f"{P}/instances/{slug}/reactivate", admin)
    assert held.status_code == 409 and str(again.json()["base_url"]) in held.json()["error_description"]
    assert (
        call(client, "DELETE", f"{P}/instances/{again.json()['slug']}", alice, {"reason": "doublon"}).status_code == 200
    )
    back = call(client, "POST", f"{P}/instances/{slug}/reactivate", admin)
    assert back.status_code == 200 and back.json()["status"] == "active"
    assert in_db(settings, lambda s: clients.get_client(s, back.json()["client_id"])).disabled_at is None


def test_an_unproven_registration_expires_and_releases_its_url(
    client: TestClient, member: Member, tmp_path: Path, database_url: str, stub_server: StubServer
) -> None:
    settings = make_settings(tmp_path, database_url, federation_unproven_days=0)
    with TestClient(create_app(settings, migrate=False), base_url=BASE_URL, follow_redirects=False) as web:
        alice, _admin, hoster = hoster_and_admin(web.app, web, settings)
        first = register(web, alice, hoster, "matrix", stub_server.url).json()
        second = register(web, alice, hoster, "matrix", stub_server.url + "/")
        assert second.status_code == 201, second.text  # the first never proved its domain: expired
        expired = call(web, "GET", f"{P}/instances/{first['slug']}", alice).json()
        assert (expired["status"], expired["status_reason"]) == ("retired", "expired")
        assert any("Inscription expirée" in s for s in subjects(settings, "tech@coop.example"))
        assert in_db(settings, lambda s: lifecycle.expire_unproven(s, settings)) == 1  # the sweep: the second
        assert call(web, "GET", f"{P}/instances/{second.json()['slug']}", alice).json()["status"] == "retired"


def test_within_the_proof_period_a_registration_holds_its_url(
    client: TestClient, member: Member, app: Any, settings: Settings, stub_server: StubServer
) -> None:
    alice, _admin, hoster = hoster_and_admin(app, client, settings)
    assert register(client, alice, hoster, "matrix", stub_server.url).status_code == 201
    assert in_db(settings, lambda s: lifecycle.expire_unproven(s, settings)) == 0
    taken = register(client, alice, hoster, "matrix", stub_server.url.replace("127.0.0.1", "localhost"))
    assert taken.status_code == 409 and taken.json()["error"] == "conflict"


def test_a_hoster_declares_purposes_and_categories_in_both_languages(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "nextcloud", stub_server)
    page = client.get(f"/federation/instances/{slug}/edit")
    assert 'name="purposes_en"' in page.text and 'name="data_categories_en"' in page.text
    base = {"csrf_token": csrf_from(page.text), "name": "Nuage TIESS", "push_notifications": "false"}
    values = {
        **base,
        "description_en": "Files and calendars",
        "purposes": "Vous connecter\n\n  Partager vos fichiers ",
        "purposes_en": "Log you in\nShare your files",
        "data_categories": "identité\ncourriel",
        "data_categories_en": "identity\nemail",
    }
    assert client.post(f"/federation/instances/{slug}/edit", data=values).status_code == 303
    row = instance_row(settings, slug)
    assert row.purposes == ["Vous connecter", "Partager vos fichiers"] and row.purposes_en[1] == "Share your files"
    assert (row.data_categories_en, row.description_en) == (["identity", "email"], "Files and calendars")
    # A form without these fields (an older page) leaves them as they are.
    again = client.get(f"/federation/instances/{slug}/edit").text
    older = {**base, "csrf_token": csrf_from(again), "name": "Nuage TIESS 2"}
    assert client.post(f"/federation/instances/{slug}/edit", data=older).status_code == 303
    assert instance_row(settings, slug).purposes_en == ["Log you in", "Share your files"]
    too_many = {**base, "csrf_token": csrf_from(again), "purposes": "\n".join(f"fin {n}" for n in range(30))}
    refused = client.post(f"/federation/instances/{slug}/edit", data=too_many)
    assert refused.status_code == 400 and "Au plus 20 fins ou catégories" in refused.text
