"""The administrators' page of clients and back-channel deliveries (``/admin/oidc/clients``)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc.clients import ClientSpec, create_client
from portail.oidc.models import BackchannelDelivery
from tests.conftest import create_member, login


def _seed(settings: Settings) -> None:
    handle = database.Database(settings)

    def seed(s: Session) -> None:
        create_client(
            s,
            ClientSpec(
                name="Nuage du quartier",
                client_id="nuage",
                redirect_uris=["https://nuage.example/cb"],
                backchannel_logout_uri="https://nuage.example/bc",
            ),
        )
        create_client(s, ClientSpec(name="Forum", client_id="forum", redirect_uris=["https://forum.example/cb"]))
        s.add(
            BackchannelDelivery(
                client_id="nuage",
                sid="s1",
                subject="a",
                uri="https://nuage.example/bc",
                status="sent",
                attempts=1,
                last_status_code=200,
            )
        )
        s.add(
            BackchannelDelivery(
                client_id="nuage",
                sid="s2",
                subject="a",
                uri="https://nuage.example/bc",
                status="failed",
                attempts=8,
                last_status_code=500,
                last_error="HTTP 500 boom",
            )
        )
        s.add(
            BackchannelDelivery(
                client_id="nuage",
                sid="s3",
                subject="a",
                uri="https://nuage.example/bc",
                status="retrying",
                attempts=2,
                last_error="ConnectError: refused",
                next_attempt_at=database.utcnow() + dt.timedelta(minutes=5),  # its backoff: not due yet
            )
        )

    handle.call(seed)
    handle.dispose()


def test_an_administrator_sees_clients_and_their_deliveries(client: TestClient, settings: Settings) -> None:
    create_member(settings, "admin@example.org", "Admin", is_admin=True)
    _seed(settings)
    login(client, "admin@example.org")
    page = client.get("/admin/oidc/clients")
    assert page.status_code == 200
    for text in ("Nuage du quartier", "Forum", "https://nuage.example/bc", "HTTP 500 boom", "ConnectError: refused"):
        assert text in page.text
    assert page.text.count('class="delivery-failed"') == 1 and page.text.count('class="delivery-retrying"') == 1
    narrowed = client.get("/admin/oidc/clients?client=forum")
    assert "HTTP 500 boom" not in narrowed.text


def test_the_page_speaks_english_to_an_english_administrator(client: TestClient, settings: Settings) -> None:
    create_member(settings, "admin@example.org", "Admin", is_admin=True, locale="en")
    _seed(settings)
    login(client, "admin@example.org")
    page = client.get("/admin/oidc/clients")
    assert "OpenID Connect clients" in page.text and "Back-channel logout" in page.text and "retrying" in page.text


def test_members_who_are_not_administrators_are_refused(client: TestClient, member: Member) -> None:
    login(client)
    assert client.get("/admin/oidc/clients").status_code == 403


def test_visitors_are_sent_to_the_login_page(client: TestClient) -> None:
    response = client.get("/admin/oidc/clients")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_navigation_links_administrators_to_their_pages(client: TestClient, settings: Settings) -> None:
    create_member(settings, "admin@example.org", "Admin", is_admin=True)
    login(client, "admin@example.org")
    page = client.get("/account").text
    assert 'aria-label="Administration"' in page
    for path in ("/admin/oidc/clients", "/federation/admin", "/privacy-officer", "/admin/privacy"):
        assert f'href="{path}"' in page


def test_the_navigation_speaks_english_to_an_english_administrator(client: TestClient, settings: Settings) -> None:
    create_member(settings, "admin@example.org", "Admin", is_admin=True, locale="en")
    login(client, "admin@example.org")
    page = client.get("/account").text
    assert ">OpenID Connect clients</a>" in page and ">Privacy officer</a>" in page


def test_a_privacy_officer_sees_only_the_pages_of_that_role(client: TestClient, settings: Settings) -> None:
    officer = create_member(settings, "officer@example.org", "Officer")
    handle = database.Database(settings)
    try:
        with handle.session() as s:
            row = s.get(Member, officer.id)
            assert row is not None
            row.roles = "privacy-officer"
            s.add(row)
    finally:
        handle.dispose()
    login(client, "officer@example.org")
    page = client.get("/account").text
    assert 'href="/privacy-officer"' in page
    assert 'href="/admin/oidc/clients"' not in page and 'href="/federation/admin"' not in page


def test_members_see_no_administration_links(client: TestClient, member: Member) -> None:
    login(client)
    page = client.get("/account").text
    assert 'aria-label="Administration"' not in page
    for path in ("/admin/oidc/clients", "/federation/admin", "/privacy-officer", "/admin/privacy"):
        assert f'href="{path}"' not in page
