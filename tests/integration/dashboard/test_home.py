"""The home page through HTTP: tiles of three scopes, search, pin and reorder without JavaScript,
notifications' empty state, discovery with join requests."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.accounts.organizations import get_organization
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation.models import Instance
from portail.notifications.models import Notification
from tests import seed
from tests.conftest import create_member, csrf_from, login, outbox


@pytest.fixture
def world(settings: Settings, member: Member) -> Iterator[Database]:
    """Alice (the ``member`` fixture) in Centre Solidaire and in the MRC de Memphrémagog (Estrie)."""
    db = Database(settings)
    with db.session() as s:
        hoster = seed.hoster(s, "coop-nuage", "Coop Nuage")
        centre = seed.organization(s, "centre", "Centre Solidaire", region="05")
        voisin = seed.organization(s, "voisin", "Voisins d’Estrie", region="05")
        mrc = seed.territory(s, "memphremagog", "MRC de Memphrémagog", "05")
        seed.membership(s, centre.id, member.id)
        seed.live_in(s, member.id, mrc.id)
        seed.instance(
            s,
            "nuage",
            "Nuage commun",
            hoster_id=hoster.id,
            health="up",
            latency_ms=42,
            description="Fichiers, agendas et contacts partagés <en équipe>",
            description_en="Shared files, calendars and contacts",
        )
        seed.instance(
            s,
            "forum-mrc",
            "Forum de la MRC",
            software="discourse",
            scope="territorial",
            organization_id=mrc.id,
            health="down",
            last_up_at=utcnow(),  # reached once: "down", not "not reached yet"
        )
        seed.instance(
            s, "centre-chat", "Clavardage du Centre", software="matrix", scope="organization", organization_id=centre.id
        )
        seed.instance(s, "voisin-nc", "Nuage des Voisins", scope="organization", organization_id=voisin.id)
    yield db
    db.dispose()


def _tile_order(html: str) -> list[str]:
    return re.findall(r'<li class="tile[^"]*" id="tile-([^"]+)"', html)


def test_home_shows_the_tiles_of_three_scopes_and_nothing_else(client: TestClient, world: Database) -> None:
    login(client)
    page = client.get("/")
    assert page.status_code == 200
    assert _tile_order(page.text) == ["centre-chat", "forum-mrc", "nuage"]
    assert "Nuage des Voisins" not in page.text.split('id="discover"')[0]
    assert 'href="https://forum-mrc.encommun.example/auth/oidc"' in page.text
    assert "hébergé par Coop Nuage" in page.text
    assert "En service (42 ms)" in page.text
    assert "Hors service pour l’instant" in page.text
    assert "Aucune notification pour l’instant." in page.text


def test_search_filters_tiles_on_the_server(client: TestClient, world: Database) -> None:
    login(client)
    page = client.get("/", params={"q": "memphremagog"})
    assert _tile_order(page.text) == ["forum-mrc"]
    assert "1 outil" in page.text
    empty = client.get("/", params={"q": "aucun-outil-de-ce-nom"})
    assert _tile_order(empty.text) == []
    assert "Aucun outil ne correspond à votre recherche." in empty.text


def test_a_tile_says_what_the_tool_is_for_in_the_members_language_and_search_reads_it(
    client: TestClient, world: Database
) -> None:
    login(client)
    page = client.get("/")
    assert '<p class="tile-description">Fichiers, agendas et contacts partagés &lt;en équipe&gt;</p>' in page.text
    assert page.text.count('class="tile-description"') == 1  # the other tools have no description
    found = client.get("/", params={"q": "agendas"})
    assert _tile_order(found.text) == ["nuage"]
    assert _tile_order(client.get("/", params={"q": "calendars"}).text) == ["nuage"]
    client.post("/language", data={"csrf_token": csrf_from(page.text), "locale": "en", "next": "/"})
    english = client.get("/")
    assert '<p class="tile-description">Shared files, calendars and contacts</p>' in english.text
    with world.session() as s:  # the hoster clears the English text: the French one shows, marked as French
        nuage = s.exec(select(Instance).where(Instance.slug == "nuage")).one()
        nuage.description_en = ""
        s.add(nuage)
    assert '<p class="tile-description" lang="fr">Fichiers, agendas' in client.get("/").text


def test_pin_and_move_with_plain_forms_are_saved_for_the_member(
    client: TestClient, world: Database, settings: Settings
) -> None:
    login(client)
    token = csrf_from(client.get("/").text)
    response = client.post("/tiles/nuage", data={"csrf_token": token, "action": "pin"})
    assert response.status_code == 303
    assert response.headers["location"] == "/#tile-nuage"
    client.post("/tiles/centre-chat", data={"csrf_token": token, "action": "down"})
    page = client.get("/")
    assert _tile_order(page.text) == ["nuage", "forum-mrc", "centre-chat"]
    assert "« Clavardage du Centre » est descendu d’un rang." in page.text
    create_member(settings, email="bob@example.org", name="Bob")
    other = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    login(other, "bob@example.org")
    assert _tile_order(other.get("/").text) == ["nuage"]  # Bob sees central tools, in his own order


def test_arranging_refuses_bad_forms_and_foreign_tiles(client: TestClient, world: Database) -> None:
    login(client)
    token = csrf_from(client.get("/").text)
    assert client.post("/tiles/voisin-nc", data={"csrf_token": token, "action": "pin"}).status_code == 404
    assert client.post("/tiles/nuage", data={"csrf_token": token, "action": "explode"}).status_code == 404
    forged = client.post("/tiles/nuage", data={"csrf_token": "forged", "action": "pin"})
    assert forged.status_code == 303
    assert _tile_order(client.get("/").text) == ["centre-chat", "forum-mrc", "nuage"]


def test_visitors_get_the_welcome_page_and_arranging_needs_a_login(client: TestClient, world: Database) -> None:
    assert "Bienvenue sur Portail En commun" in client.get("/").text
    response = client.post("/tiles/nuage", data={"action": "pin"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_request_access_from_discover_reaches_the_admin_who_approves(
    client: TestClient, world: Database, settings: Settings
) -> None:
    admin = create_member(settings, email="ada@example.org", name="Ada Admin")
    with world.session() as s:
        seed.membership(s, get_organization(s, "voisin").id, admin.id, role="admin")
    login(client)
    home = client.get("/")
    discover = home.text.split('id="discover"')[1]
    assert "Nuage des Voisins" in discover and "Demander l’accès" in discover
    response = client.post(
        "/organizations/voisin/join", data={"csrf_token": csrf_from(home.text), "next": "/#discover"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/#discover"
    assert "Demande envoyée" in client.get("/").text
    assert [m["To"] for m in outbox(settings)][-1] == "ada@example.org"

    admin_client = TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
    login(admin_client, "ada@example.org")
    page = admin_client.get("/organizations/voisin")
    assert "Alice Tremblay" in page.text.split('id="requests"')[1]
    alice_id = re.search(r'name="member" value="([0-9a-f]{32})"', page.text.split('id="requests"')[1])
    assert alice_id
    approved = admin_client.post(
        "/organizations/voisin/approve", data={"csrf_token": csrf_from(page.text), "member": alice_id.group(1)}
    )
    assert approved.status_code == 303
    assert "voisin-nc" in _tile_order(client.get("/").text)


def test_home_shows_the_unread_count_and_latest_notifications(
    client: TestClient, world: Database, member: Member
) -> None:
    with world.session() as s:
        nuage = s.exec(select(Instance).where(Instance.slug == "nuage")).one()
        for n, (title, link) in enumerate(
            [("Fichier partagé avec vous", "https://nuage.encommun.example/f/1"), ("Piège", "javascript:alert(1)")]
        ):
            s.add(Notification(member_id=member.id, instance_id=nuage.id, external_id=f"n{n}", title=title, link=link))
    login(client)
    corner = client.get("/").text.split('id="notifications"')[1].split("</section>")[0]
    assert "2 non lues" in corner
    assert '<a href="https://nuage.encommun.example/f/1">Fichier partagé avec vous</a>' in corner
    assert "Piège" in corner and "javascript:" not in corner
    assert 'href="/notifications"' in corner
    assert "Aucune notification" not in corner
