"""A hoster's whole journey through the pages, on SQLite and PostgreSQL: apply with the charter, the
federation approves or refuses (reason mailed), register a node, serve the challenge on a real local
server, verify, approval, the secret and configuration shown once, rotation, suspension (client
disabled, disappears from the directory), reactivation, retirement — each decision in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import AuditEvent, Member
from portail.config import Settings
from portail.federation.models import Hoster, Instance
from portail.oidc import clients
from portail.oidc.models import OAuthClient
from tests.conftest import BASE_URL, create_member, csrf_from, login, mail_text, outbox
from tests.federation_factories import add_organization, in_db
from tests.stub_server import StubServer


def post(client: TestClient, page: str, action: str, data: dict[str, Any]) -> Any:
    token = csrf_from(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token})


def audit_actions(settings: Settings, subject_id: str) -> list[str]:
    return in_db(
        settings,
        lambda s: [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.subject_id == subject_id))],
    )


def instance_row(settings: Settings, slug: str) -> Instance:
    return in_db(settings, lambda s: s.exec(select(Instance).where(Instance.slug == slug)).one())


def client_row(settings: Settings, client_id: str) -> OAuthClient:
    return in_db(settings, lambda s: s.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).one())


@pytest.fixture
def admin_client(app, settings: Settings):  # type: ignore[no-untyped-def]
    create_member(settings, "admin@example.org", "Ada Admin", is_admin=True)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as other:
        login(other, "admin@example.org")
        yield other


def apply_as_hoster(client: TestClient) -> str:
    response = post(
        client,
        "/federation/hosters/apply",
        "/federation/hosters/apply",
        {
            "name": "Coop Nuage Libre",
            "website": "https://nuagelibre.example",
            "contact_email": "tech@nuagelibre.example",
            "region": "05",
            "description": "Coopérative",
            "accept_charter": "on",
        },
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[-1]


def test_hoster_application_requires_the_charter(client: TestClient, member: Member) -> None:
    login(client)
    response = post(
        client,
        "/federation/hosters/apply",
        "/federation/hosters/apply",
        {"name": "Coop", "contact_email": "tech@coop.example"},
    )
    assert response.status_code == 400
    assert "charte" in response.text


def test_federation_refuses_an_application_with_a_mailed_reason(
    client: TestClient, member: Member, admin_client: TestClient, settings: Settings
) -> None:
    login(client)
    slug = apply_as_hoster(client)
    no_reason = post(admin_client, "/federation/admin", f"/federation/admin/hosters/{slug}", {"decision": "refuse"})
    assert no_reason.status_code == 400
    assert "raison" in no_reason.text
    refused = post(
        admin_client,
        "/federation/admin",
        f"/federation/admin/hosters/{slug}",
        {"decision": "refuse", "reason": "Statut juridique à préciser"},
    )
    assert refused.status_code == 303
    hoster = in_db(settings, lambda s: s.exec(select(Hoster).where(Hoster.slug == slug)).one())
    assert (hoster.status, hoster.status_reason) == ("refused", "Statut juridique à préciser")
    to_hoster = [m for m in outbox(settings) if "refusée" in str(m["Subject"])]
    assert {str(m["To"]) for m in to_hoster} == {"tech@nuagelibre.example", "alice@example.org"}
    assert "Statut juridique à préciser" in mail_text(to_hoster[0])
    assert audit_actions(settings, slug) == ["hoster.applied", "hoster.refused"]


def test_hoster_journey_from_application_to_configuration(
    client: TestClient, member: Member, admin_client: TestClient, settings: Settings, stub_server: StubServer
) -> None:
    add_organization(settings, "tiess", "TIESS")
    login(client)
    slug = apply_as_hoster(client)
    assert "Nouvelle demande" in str(outbox(settings)[-1]["Subject"])
    assert client.get(f"/federation/hosters/{slug}/nodes/new").status_code == 409
    approved = post(admin_client, "/federation/admin", f"/federation/admin/hosters/{slug}", {"decision": "approve"})
    assert approved.status_code == 303
    assert any("acceptée" in str(m["Subject"]) and m["To"] == "alice@example.org" for m in outbox(settings))
    journal = admin_client.get("/federation/admin").text.split('id="journal"', 1)[1]
    assert "Hébergeur approuvé" in journal and "<code>hoster.approved</code>" in journal  # words, then the code

    # register a node (Nextcloud) served by a real local server
    form_page = f"/federation/hosters/{slug}/nodes/new"
    registered = post(
        client,
        form_page,
        form_page,
        {
            "software": "nextcloud",
            "name": "Nuage TIESS",
            "base_url": stub_server.url + "/",
            "scope": "organization",
            "organization": "tiess",
            "provider_identifier": "encommun",
            "push_notifications": "true",  # a Nextcloud is pulled by default; this hoster's also pushes
        },
    )
    assert registered.status_code == 303, registered.text
    node = str(registered.headers["location"]).rsplit("/", 1)[-1]
    page = client.get(f"/federation/instances/{node}")
    row = instance_row(settings, node)
    assert row.status == "awaiting-proof" and row.base_url == stub_server.url and row.push_notifications
    assert row.challenge and row.challenge in page.text
    assert f"{stub_server.url}/.well-known/portail-challenge" in page.text

    # nothing served: refused, explained, recorded
    absent = post(client, f"/federation/instances/{node}", f"/federation/instances/{node}/verify", {})
    assert absent.status_code == 422
    assert "introuvable" in absent.text
    stub_server.route("/.well-known/portail-challenge", "portail-not-the-right-token")
    mismatch = post(client, f"/federation/instances/{node}", f"/federation/instances/{node}/verify", {})
    assert mismatch.status_code == 422
    assert "ne correspond pas" in mismatch.text
    assert instance_row(settings, node).status == "awaiting-proof"
    stub_server.route("/.well-known/portail-challenge", row.challenge + "\n")
    verified = post(client, f"/federation/instances/{node}", f"/federation/instances/{node}/verify", {})
    assert verified.status_code == 303
    assert instance_row(settings, node).status == "awaiting-approval"
    assert any("Nœud à approuver" in str(m["Subject"]) and m["To"] == "admin@example.org" for m in outbox(settings))

    # the hoster cannot approve its own node; the federation does
    self_approval = post(
        client, f"/federation/instances/{node}", f"/federation/instances/{node}/decision", {"action": "approve"}
    )
    assert self_approval.status_code == 403
    decision = post(
        admin_client, f"/federation/instances/{node}", f"/federation/instances/{node}/decision", {"action": "approve"}
    )
    assert decision.status_code == 303
    row = instance_row(settings, node)
    assert row.status == "active" and row.client_id
    oauth = client_row(settings, row.client_id)
    assert oauth.redirect_uris == [
        f"{stub_server.url}/apps/user_oidc/code",
        f"{stub_server.url}/index.php/apps/user_oidc/code",
    ]
    assert oauth.backchannel_logout_uri == f"{stub_server.url}/index.php/apps/user_oidc/backchannel-logout/encommun"

    # the secret and the configuration, shown once
    shown = post(client, f"/federation/instances/{node}", f"/federation/instances/{node}/secret", {})
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    secret = shown.text.split('id="client-secret">', 1)[1].split("<", 1)[0]
    assert clients.verify_secret(client_row(settings, row.client_id), secret)
    assert "occ user_oidc:provider encommun" in shown.text
    for flag in (
        "--check-bearer=1",
        "--unique-uid=0",
        "--mapping-uid=preferred_username",
        "--mapping-groups=groups",
        f"--clientsecret={secret}",
        f"--discoveryuri={BASE_URL}/.well-known/openid-configuration",
    ):
        assert flag in shown.text
    assert secret not in client.get(f"/federation/instances/{node}").text

    rotated = post(client, f"/federation/instances/{node}", f"/federation/instances/{node}/secret", {})
    new_secret = rotated.text.split('id="client-secret">', 1)[1].split("<", 1)[0]
    assert new_secret != secret
    assert not clients.verify_secret(client_row(settings, row.client_id), secret, previous=False)
    assert clients.verify_secret(client_row(settings, row.client_id), secret)  # during the grace period
    assert clients.verify_secret(client_row(settings, row.client_id), new_secret)
    assert row.name in client.get("/federation/directory").text

    # suspension: a reason is required; the client is disabled; the node leaves the directory
    no_reason = post(
        admin_client, f"/federation/instances/{node}", f"/federation/instances/{node}/decision", {"action": "suspend"}
    )
    assert no_reason.status_code == 400
    suspended = post(
        admin_client,
        f"/federation/instances/{node}",
        f"/federation/instances/{node}/decision",
        {"action": "suspend", "reason": "Faille de sécurité non corrigée"},
    )
    assert suspended.status_code == 303
    assert instance_row(settings, node).status == "suspended"
    assert client_row(settings, row.client_id).disabled_at is not None
    assert row.name not in client.get("/federation/directory").text
    mail = [m for m in outbox(settings) if "suspendu" in str(m["Subject"]) and m["To"] == "alice@example.org"]
    assert mail and "Faille de sécurité non corrigée" in mail_text(mail[0])

    reactivated = post(
        admin_client,
        f"/federation/instances/{node}",
        f"/federation/instances/{node}/decision",
        {"action": "reactivate"},
    )
    assert reactivated.status_code == 303
    assert client_row(settings, row.client_id).disabled_at is None

    retired = post(
        client,
        f"/federation/instances/{node}",
        f"/federation/instances/{node}/decision",
        {"action": "retire", "reason": "Fin du service"},
    )
    assert retired.status_code == 303
    assert instance_row(settings, node).status == "retired"
    assert client_row(settings, row.client_id).disabled_at is not None

    assert audit_actions(settings, node) == [
        "instance.registered", "federation.url_refused", "federation.url_refused", "instance.verified",
        "instance.approved", "instance.secret_issued", "instance.secret_rotated", "instance.suspended",
        "instance.reactivated", "instance.retired",
    ]  # fmt: skip


def test_registration_refuses_duplicate_and_unsafe_base_urls(
    app,
    client: TestClient,
    member: Member,
    settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    add_organization(settings, "tiess", "TIESS")
    login(client)
    from tests.federation_factories import add_hoster

    add_hoster(settings, "coop", "alice@example.org")
    page = "/federation/hosters/coop/nodes/new"
    base = {"software": "discourse", "name": "Forum", "scope": "organization", "organization": "tiess"}
    first = post(client, page, page, {**base, "base_url": "https://forum.tiess.example"})
    assert first.status_code == 303
    again = post(client, page, page, {**base, "base_url": "https://FORUM.tiess.example/"})
    assert again.status_code == 409
    assert "déjà inscrite" in again.text
    assert audit_actions(settings, "coop").count("instance.registration_refused") == 1
    for url, words in (
        ("https://forum.example/#x", "fragment"),
        ("https://u:p@forum.example", "identifiants"),
        ("ftp://forum.example", "https://"),
        ("https://forum.example/?a=1", "paramètres"),
    ):
        response = post(client, page, page, {**base, "base_url": url})
        assert response.status_code == 400, url
        assert words in response.text, url
    unclear = post(client, page, page, {**base, "base_url": "https://wiki.tiess.example", "push_notifications": "?"})
    assert unclear.status_code == 400 and "push_notifications" in unclear.text


def test_registration_refuses_private_and_metadata_addresses_in_production_settings(
    settings: Settings, member: Member
) -> None:
    from portail.app import create_app
    from tests.federation_factories import add_hoster

    add_organization(settings, "tiess", "TIESS")
    add_hoster(settings, "coop", "alice@example.org")
    strict = settings.replace(allow_private_addresses=False)
    with TestClient(create_app(strict, migrate=False), base_url=BASE_URL, follow_redirects=False) as client:
        login(client)
        page = "/federation/hosters/coop/nodes/new"
        base = {"software": "matrix", "name": "Chat", "scope": "organization", "organization": "tiess"}
        for url, words in (
            ("http://10.0.0.1", "réseau privé"),
            ("http://169.254.169.254", "métadonnées"),
            ("http://[::1]:8008", "boucle locale"),
            ("http://localhost:8008", "boucle locale"),
        ):
            response = post(client, page, page, {**base, "base_url": url})
            assert response.status_code == 400, url
            assert words in response.text, url
    refusals = audit_actions(settings, "coop")
    assert refusals.count("federation.url_refused") == 4


def test_someone_outside_the_hoster_cannot_see_or_act_on_its_nodes(
    client: TestClient, member: Member, settings: Settings
) -> None:
    from tests.federation_factories import add_hoster, add_instance

    create_member(settings, "bob@example.org", "Bob")
    add_hoster(settings, "coop", "alice@example.org")
    add_instance(settings, "cloud-coop", hoster="coop", status="awaiting-proof", scope="organization")
    login(client, "bob@example.org")
    assert client.get("/federation/hosters/coop").status_code == 403
    assert client.get("/federation/instances/cloud-coop").status_code == 403
    token = csrf_from(client.get("/federation").text)
    assert client.post("/federation/instances/cloud-coop/verify", data={"csrf_token": token}).status_code == 403
    assert client.get("/federation/instances/nope").status_code == 404
    assert client.get("/federation/admin").status_code == 403


def test_pages_ask_visitors_to_log_in(client: TestClient) -> None:
    for path in ("/federation", "/federation/hosters/apply", "/federation/admin", "/account/api-tokens"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_a_hoster_admin_adds_and_removes_people_and_bad_input_is_a_400(
    client: TestClient, member: Member, admin_client: TestClient, settings: Settings
) -> None:
    login(client)
    slug = apply_as_hoster(client)
    assert (
        post(
            admin_client, "/federation/admin", f"/federation/admin/hosters/{slug}", {"decision": "approve"}
        ).status_code
        == 303
    )
    bob = create_member(settings, "bob@example.org", "Bob Gagnon")
    page, action = f"/federation/hosters/{slug}", f"/federation/hosters/{slug}/people"

    added = post(client, page, action, {"email": "bob@example.org", "role": "hoster-member"})
    assert added.status_code == 303 and added.headers["location"] == page
    assert "bob@example.org" in client.get(page).text
    unknown = post(client, page, action, {"email": "nobody@example.org", "role": "hoster-member"})
    assert unknown.status_code == 400 and "Aucun compte" in unknown.text
    garbage = post(client, page, action, {"remove": "not-a-number"})
    assert garbage.status_code == 400 and "La demande est invalide." in garbage.text
    removed = post(client, page, action, {"remove": str(bob.id)})
    assert removed.status_code == 303
    assert "bob@example.org" not in client.get(page).text
    last_admin = in_db(settings, lambda s: s.exec(select(Member.id).where(Member.email == "alice@example.org")).one())
    assert post(client, page, action, {"remove": str(last_admin)}).status_code in (400, 409)
