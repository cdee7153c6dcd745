"""My organizations, one organization's administration (invitations, requests, roles) and the
profile's territory, through HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.accounts.organizations import get_organization
from portail.config import Settings
from portail.db import Database
from tests import seed
from tests.conftest import create_member, csrf_from, login, outbox


@pytest.fixture
def centre(settings: Settings, member: Member) -> Iterator[Database]:
    """Alice (``member``) administers Centre Solidaire; two territories exist."""
    db = Database(settings)
    with db.session() as s:
        org = seed.organization(s, "centre", "Centre Solidaire", region="05")
        seed.membership(s, org.id, member.id, role="admin")
        seed.territory(s, "memphremagog", "MRC de Memphrémagog", "05", locality="Magog")
        seed.territory(s, "laval", "Laval", "13")
    yield db
    db.dispose()


def _client(client: TestClient, email: str) -> TestClient:
    other = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    login(other, email)
    return other


def test_an_invited_member_accepts_from_my_organizations(
    client: TestClient, centre: Database, settings: Settings
) -> None:
    create_member(settings, email="bob@example.org", name="Bob Gagnon")
    login(client)
    page = client.get("/organizations/centre")
    response = client.post(
        "/organizations/centre/invite",
        data={"csrf_token": csrf_from(page.text), "email": "BOB@example.org", "role": "member"},
    )
    assert response.status_code == 303
    assert "Bob Gagnon" in client.get("/organizations/centre").text.split("Invitations en attente")[1]
    mail = outbox(settings)[-1]
    assert mail["To"] == "BOB@example.org" and "Centre Solidaire" in mail["Subject"]
    bob = _client(client, "bob@example.org")
    mine = bob.get("/organizations")
    assert 'id="invitations"' in mine.text
    accepted = bob.post(
        "/organizations/centre/accept", data={"csrf_token": csrf_from(mine.text), "next": "/organizations"}
    )
    assert accepted.status_code == 303
    assert "Centre Solidaire" in bob.get("/organizations").text.split('id="member-of-h"')[1]


def test_a_person_without_account_signs_up_then_accepts_through_the_mailed_link(
    client: TestClient, centre: Database, settings: Settings
) -> None:
    login(client)
    page = client.get("/organizations/centre")
    client.post(
        "/organizations/centre/invite",
        data={"csrf_token": csrf_from(page.text), "email": "carole@example.org", "role": "admin"},
    )
    invitation = outbox(settings)[-1]
    text = invitation.get_body(("plain",)).get_content()
    assert "http://localhost:8000/signup" in text
    link = re.search(r"http://localhost:8000(/organizations/invitation\?token=\S+)", text).group(1)  # type: ignore[union-attr]
    create_member(settings, email="carole@example.org", name="Carole Roy")
    carole = _client(client, "carole@example.org")
    shown = carole.get(link)
    assert shown.status_code == 200 and "Centre Solidaire" in shown.text
    done = carole.post(
        "/organizations/invitation",
        data={"csrf_token": csrf_from(shown.text), "token": link.split("token=")[1], "decision": "accept"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/organizations/centre"
    assert "Demandes d’adhésion" in carole.get("/organizations/centre").text  # she is an admin now

    create_member(settings, email="dan@example.org", name="Dan")
    assert _client(client, "dan@example.org").get(link).status_code == 400  # not his address


def test_an_admin_changes_roles_and_cannot_drop_the_last_admin(
    client: TestClient, centre: Database, settings: Settings, member: Member
) -> None:
    bob = create_member(settings, email="bob@example.org", name="Bob Gagnon")
    with centre.session() as s:
        seed.membership(s, get_organization(s, "centre").id, bob.id)
    alice_public = member.public_id
    login(client)
    token = csrf_from(client.get("/organizations/centre").text)
    refused = client.post(
        "/organizations/centre/role", data={"csrf_token": token, "member": alice_public, "role": "member"}
    )
    assert refused.status_code == 400
    assert "au moins un administrateur" in refused.text
    assert (
        client.post(
            "/organizations/centre/role", data={"csrf_token": token, "member": bob.public_id, "role": "admin"}
        ).status_code
        == 303
    )
    bob_client = _client(client, "bob@example.org")
    assert "Demandes d’adhésion" in bob_client.get("/organizations/centre").text


def test_a_plain_member_cannot_administer_and_unknown_things_are_clear_errors(
    client: TestClient, centre: Database, settings: Settings
) -> None:
    create_member(settings, email="bob@example.org", name="Bob Gagnon")
    bob = _client(client, "bob@example.org")
    page = bob.get("/organizations/centre")
    assert "Demandes d’adhésion" not in page.text
    token = csrf_from(page.text)
    forbidden = bob.post("/organizations/centre/invite", data={"csrf_token": token, "email": "x@example.org"})
    assert forbidden.status_code == 403
    assert bob.get("/organizations/nowhere").status_code == 404
    assert bob.post("/organizations/centre/explode", data={"csrf_token": token}).status_code == 400
    assert bob.post("/organizations/centre/join", data={"csrf_token": "forged"}).status_code == 400
    assert bob.get("/organizations/invitation", params={"token": "garbage"}).status_code == 400


def test_the_member_chooses_a_territory_from_the_account_page(client: TestClient, centre: Database) -> None:
    login(client)
    account = client.get("/account")
    assert 'href="/account/territory"' in account.text
    form = client.get("/account/territory")
    assert '<optgroup label="Estrie">' in form.text
    with centre.session() as s:
        mrc = get_organization(s, "memphremagog")
    saved = client.post("/account/territory", data={"csrf_token": csrf_from(form.text), "territory": str(mrc.id)})
    assert saved.status_code == 303
    assert "MRC de Memphrémagog" in client.get("/account").text
    bad = client.post("/account/territory", data={"csrf_token": csrf_from(form.text), "territory": "abc"})
    assert bad.status_code == 400
    centre_id = centre.call(lambda s: str(get_organization(s, "centre").id))
    not_a_territory = client.post(
        "/account/territory", data={"csrf_token": csrf_from(form.text), "territory": centre_id}
    )
    assert not_a_territory.status_code == 400


def test_pages_are_english_for_an_english_member(client: TestClient, centre: Database) -> None:
    login(client)
    page = client.get("/organizations")
    client.post("/language", data={"csrf_token": csrf_from(page.text), "locale": "en", "next": "/"})
    assert "Organizations I belong to" in client.get("/organizations").text
    assert "No notifications yet." in client.get("/").text


def test_every_form_of_the_portal_pages_carries_the_csrf_token(
    client: TestClient, centre: Database, settings: Settings
) -> None:
    create_member(settings, email="bob@example.org", name="Bob Gagnon")
    login(client)
    page = client.get("/organizations/centre")
    client.post(
        "/organizations/centre/invite",
        data={"csrf_token": csrf_from(page.text), "email": "bob@example.org", "role": "member"},
    )
    text = outbox(settings)[-1].get_body(("plain",)).get_content()
    link = re.search(r"http://localhost:8000(/organizations/invitation\?token=\S+)", text).group(1)  # type: ignore[union-attr]
    bob = _client(client, "bob@example.org")
    pages = [client.get(p).text for p in ("/", "/organizations", "/organizations/centre", "/account/territory")]
    pages += [bob.get(p).text for p in ("/organizations", "/organizations/centre", link)]
    for html in pages:
        assert html.count('method="post"') == html.count('name="csrf_token" value="') > 0
        assert 'name="csrf_token" value=""' not in html
