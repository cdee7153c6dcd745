"""The portal in real headless Chromium: tiles of three scopes, pin and reorder, search (with and
without JavaScript), a join request approved by an organization admin, the sessions list with
"end this session", and axe-core on every page."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import Browser, Page, expect
from sqlmodel import col, select

from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.db import Database, utcnow
from portail.notifications.models import Notification
from portail.oidc.clients import ClientSpec, create_client
from portail.oidc.models import SessionClient
from tests import seed
from tests.browser.conftest import LiveServer, axe_check, no_horizontal_overflow, shot
from tests.conftest import PASSWORD, create_member, free_port

pytestmark = pytest.mark.browser


@dataclass
class World:
    server: LiveServer
    alice: Member
    ada: Member


@pytest.fixture
def world(live_server: LiveServer) -> Iterator[World]:
    """Alice belongs to Centre Solidaire and lives in the MRC de Memphrémagog (Estrie); Ada administers
    Voisins d’Estrie. Instances of every scope, seeded straight into the registry."""
    settings = live_server.settings
    alice = create_member(settings, email="alice@example.org", name="Alice Tremblay")
    ada = create_member(settings, email="ada@example.org", name="Ada Lavoie")
    db = Database(settings)
    with db.session() as s:
        coop = seed.hoster(s, "coop-nuage", "Coop Nuage")
        chatons = seed.hoster(s, "chatons-estrie", "Chatons d’Estrie")
        centre = seed.organization(s, "centre", "Centre Solidaire", region="05")
        voisins = seed.organization(s, "voisins", "Voisins d’Estrie", region="05", locality="Sherbrooke")
        seed.organization(s, "jardins", "Jardins partagés de Magog", region="05", locality="Magog")
        mrc = seed.territory(s, "memphremagog", "MRC de Memphrémagog", "05", locality="Magog")
        seed.territory(s, "sherbrooke", "Ville de Sherbrooke", "05")
        seed.territory(s, "laval", "Laval", "13")
        seed.membership(s, centre.id, alice.id)
        seed.membership(s, voisins.id, ada.id, role="admin")
        seed.live_in(s, alice.id, mrc.id)
        passerelles = seed.instance(
            s,
            "passerelles",
            "Passerelles",
            software="passerelles",
            hoster_id=coop.id,
            base_url="https://passerelles.encommun.example",
            health="up",
            latency_ms=38,
        )
        seed.instance(
            s,
            "praxis",
            "Praxis",
            software="praxis",
            hoster_id=coop.id,
            base_url="https://praxis.encommun.example",
            health="up",
            latency_ms=51,
        )
        seed.instance(
            s,
            "clavardage",
            "Clavardage En commun",
            software="matrix",
            hoster_id=coop.id,
            base_url="https://matrix.encommun.example",
            login_url="https://element.encommun.example/",
            health="up",
            latency_ms=64,
        )
        nuage = seed.instance(
            s,
            "nuage-centre",
            "Nuage du Centre Solidaire",
            software="nextcloud",
            scope="organization",
            organization_id=centre.id,
            hoster_id=chatons.id,
            base_url="https://nuage.centre.example",
            extra={"user_oidc_provider_id": 1},
            health="up",
            latency_ms=120,
        )
        seed.instance(
            s,
            "forum-mrc",
            "Forum de la MRC",
            software="discourse",
            scope="territorial",
            organization_id=mrc.id,
            hoster_id=chatons.id,
            base_url="https://forum.memphremagog.example",
            health="down",
            last_up_at=utcnow(),  # reached once: "down", not "not reached yet"
        )
        seed.instance(
            s,
            "nuage-voisins",
            "Nuage des Voisins",
            software="nextcloud",
            scope="organization",
            organization_id=voisins.id,
            hoster_id=chatons.id,
            base_url="https://nuage.voisins.example",
        )
        mentions = [
            (passerelles, "Marie vous a mentionné dans « Assemblée de novembre »"),
            (nuage, "« Budget 2027.ods » a été partagé avec vous"),
        ]
        for n, (where, title) in enumerate(mentions):
            link = f"{where.base_url}/n/{n}"
            s.add(Notification(member_id=alice.id, instance_id=where.id, external_id=f"n{n}", title=title, link=link))
    db.dispose()
    yield World(server=live_server, alice=alice, ada=ada)


def log_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Adresse courriel").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")


def tile_names(page: Page) -> list[str]:
    return page.locator("#tiles > li.tile:visible .tile-name").all_inner_texts()


def test_home_shows_tiles_of_three_scopes_and_pins_reorders_and_searches(world: World, page: Page) -> None:
    server = world.server
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, server, "alice@example.org")
    expect(page.get_by_role("heading", name="Mes outils", level=2)).to_be_visible()
    assert tile_names(page) == [
        "Clavardage En commun",
        "Forum de la MRC",
        "Nuage du Centre Solidaire",
        "Passerelles",
        "Praxis",
    ]
    assert "Nuage des Voisins" not in tile_names(page)
    forum = page.locator("#tile-forum-mrc")
    expect(forum).to_contain_text("Votre territoire : MRC de Memphrémagog")
    expect(forum).to_contain_text("hébergé par Chatons d’Estrie")
    expect(forum).to_contain_text("Hors service pour l’instant")
    expect(page.locator("#tile-nuage-centre")).to_contain_text("Pour Centre Solidaire")
    expect(page.locator("#tile-praxis")).to_contain_text("Outil commun d’En commun")
    open_nc = page.get_by_role("link", name="Ouvrir Nuage du Centre Solidaire")
    expect(open_nc).to_have_attribute("href", "https://nuage.centre.example/index.php/apps/user_oidc/login/1")
    expect(page.get_by_role("link", name="Ouvrir Clavardage En commun")).to_have_attribute(
        "href", "https://element.encommun.example/"
    )
    notifications = page.locator("#notifications")
    expect(notifications).to_contain_text("2 non lues")
    budget = notifications.get_by_role("link", name="« Budget 2027.ods » a été partagé avec vous")
    expect(budget).to_have_attribute("href", "https://nuage.centre.example/n/1")
    expect(page.locator("#discover")).to_contain_text("Nuage des Voisins")
    axe_check(page)

    # Pin Praxis (JavaScript rearranges in place and keeps the focus on the tile's button).
    page.get_by_role("button", name="Épingler Praxis").click()
    expect(page.locator("#tiles > li.tile").first).to_have_id("tile-praxis")
    expect(page.get_by_role("button", name="Détacher Praxis")).to_be_focused()
    expect(page.locator("#tile-count")).to_have_text("« Praxis » est épinglé.")
    page.get_by_role("button", name="Épingler Passerelles").click()
    expect(page.locator("#tiles > li.tile").nth(1)).to_have_id("tile-passerelles")
    page.get_by_role("button", name="Monter Passerelles").click()
    expect(page.locator("#tiles > li.tile").first).to_have_id("tile-passerelles")
    expect(page.get_by_role("button", name="Monter Passerelles")).to_be_disabled()
    page.get_by_role("button", name="Descendre Clavardage En commun").click()
    expect(page.locator("#tile-count")).to_have_text("« Clavardage En commun » est descendu d’un rang.")
    page.reload()
    assert tile_names(page) == [
        "Passerelles",
        "Praxis",
        "Forum de la MRC",
        "Clavardage En commun",
        "Nuage du Centre Solidaire",
    ]
    shot(page, "portal-home")

    # Search filters as you type, ignoring accents and case.
    page.get_by_label("Rechercher un outil").fill("memphremagog")
    expect(page.locator("#tile-count")).to_have_text("1 outil")
    assert tile_names(page) == ["Forum de la MRC"]
    page.get_by_label("Rechercher un outil").fill("nuage")
    expect(page.locator("#tile-count")).to_have_text("1 outil")
    page.get_by_label("Rechercher un outil").fill("introuvable")
    expect(page.locator("#tile-count")).to_have_text("Aucun outil ne correspond à votre recherche.")
    page.get_by_label("Rechercher un outil").fill("")
    expect(page.locator("#tile-count")).to_have_text("5 outils")

    page.set_viewport_size({"width": 360, "height": 800})
    assert no_horizontal_overflow(page)
    axe_check(page)
    shot(page, "portal-home-360")


def test_pin_reorder_and_search_work_without_javascript(world: World, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False, locale="fr-CA")
    try:
        page = context.new_page()
        log_in(page, world.server, "alice@example.org")
        page.get_by_role("button", name="Épingler Forum de la MRC").click()
        expect(page).to_have_url(re.compile(r"/#tile-forum-mrc$"))
        expect(page.get_by_role("status").first).to_have_text("« Forum de la MRC » est épinglé.")
        assert tile_names(page)[0] == "Forum de la MRC"
        page.get_by_role("button", name="Descendre Clavardage En commun").click()
        assert tile_names(page)[1:3] == ["Nuage du Centre Solidaire", "Clavardage En commun"]
        page.get_by_label("Rechercher un outil").fill("praxis")
        page.get_by_role("button", name="Rechercher", exact=True).click()
        expect(page).to_have_url(re.compile(r"/\?q=praxis$"))
        assert tile_names(page) == ["Praxis"]
        page.get_by_role("button", name="Épingler Praxis").click()
        expect(page).to_have_url(re.compile(r"/\?q=praxis#tile-praxis$"))
        assert tile_names(page) == ["Praxis"]  # (axe needs JavaScript: it runs in the other tests)
    finally:
        context.close()


def test_a_join_request_from_discover_is_approved_by_the_organization_admin(world: World, browser: Browser) -> None:
    server = world.server
    alice_context = browser.new_context(locale="fr-CA")
    ada_context = browser.new_context(locale="fr-CA")
    try:
        alice = alice_context.new_page()
        log_in(alice, server, "alice@example.org")
        discover = alice.locator("#discover")
        discover.get_by_role("button", name="Demander l’accès : Nuage des Voisins").click()
        expect(alice.locator("#discover")).to_contain_text("Demande envoyée")
        alice.goto(f"{server.url}/organizations")
        expect(alice.get_by_role("heading", name="Mes demandes en attente")).to_be_visible()
        axe_check(alice)
        shot(alice, "portal-organizations")

        ada = ada_context.new_page()
        log_in(ada, server, "ada@example.org")
        ada.goto(f"{server.url}/organizations/voisins")
        requests = ada.locator("#requests")
        expect(requests).to_contain_text("Alice Tremblay")
        axe_check(ada)
        shot(ada, "portal-organization-admin")
        requests.get_by_role("button", name="Accepter : Alice Tremblay").click()
        expect(ada.get_by_role("status").first).to_have_text("Demande acceptée.")
        members_table = ada.get_by_role("table", name="Membres")
        expect(members_table).to_contain_text("Alice Tremblay")
        ada.get_by_label("Rôle de Alice Tremblay").select_option("admin")
        ada.get_by_role("button", name="Changer le rôle : Alice Tremblay").click()
        expect(ada.get_by_role("status").first).to_have_text("Rôle modifié.")

        alice.goto(f"{server.url}/")
        expect(alice.locator("#tile-nuage-voisins")).to_contain_text("Pour Voisins d’Estrie")
    finally:
        alice_context.close()
        ada_context.close()


class RelyingParty:
    """A tool's back-channel logout endpoint on 127.0.0.1 (OpenID Connect Back-Channel Logout 1.0 §2.5)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        received = self.tokens

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                received.extend(form.get("logout_token", []))
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _tool_got_tokens_in(settings: Settings, member_id: int, sid: str, backchannel_uri: str) -> None:
    """A tool registered with a back-channel logout URI received tokens in the session ``sid``.

    (Recorded as the provider records it when it issues tokens, ``SessionClient``.)
    """
    db = Database(settings)
    with db.session() as s:
        create_client(
            s,
            ClientSpec(
                name="Outil de test",
                client_id="outil-test",
                redirect_uris=["http://127.0.0.1:9/cb"],
                backchannel_logout_uri=backchannel_uri,
            ),
        )
        s.add(SessionClient(sid=sid, client_id="outil-test", member_id=member_id))
    db.dispose()


def _session_of(settings: Settings, user_agent_part: str) -> str:
    db = Database(settings)
    with db.session() as s:
        rows = s.exec(select(LoginSession).where(col(LoginSession.ended_at).is_(None))).all()
    db.dispose()
    [sid] = [row.sid for row in rows if user_agent_part in row.user_agent]
    return sid


def test_territory_is_chosen_and_ending_a_session_logs_it_out_of_the_tools(world: World, browser: Browser) -> None:
    server = world.server
    laptop = browser.new_context(locale="fr-CA", user_agent="Mozilla/5.0 (X11; Linux x86_64) Portable")
    phone = browser.new_context(locale="fr-CA", user_agent="Mozilla/5.0 (Android 14) Telephone")
    tool = RelyingParty()
    try:
        page = laptop.new_page()
        log_in(page, server, "alice@example.org")
        other = phone.new_page()
        log_in(other, server, "alice@example.org")
        phone_sid = _session_of(server.settings, "Telephone")
        _tool_got_tokens_in(server.settings, world.alice.id or 0, phone_sid, tool.url)

        page.goto(f"{server.url}/account")
        expect(page.locator(".territory-summary")).to_contain_text("MRC de Memphrémagog")
        page.get_by_role("link", name="Choisir mon territoire").click()
        axe_check(page)
        page.get_by_label("Territoire").select_option(label="Ville de Sherbrooke")
        page.get_by_role("button", name="Enregistrer mon territoire").click()
        expect(page.locator(".territory-summary")).to_contain_text("Ville de Sherbrooke")

        sessions = page.locator("ul.sessions > li")
        expect(sessions).to_have_count(2)
        phone_row = sessions.filter(has_text="Android")
        expect(phone_row).to_have_count(1)
        axe_check(page)
        shot(page, "portal-account-sessions")
        phone_row.get_by_role("button", name="Fermer cette session").click()
        expect(page.get_by_role("status").first).to_contain_text("La session est fermée")
        expect(page.locator("ul.sessions > li")).to_have_count(1)

        other.goto(f"{server.url}/")
        expect(other.get_by_role("heading", level=1)).to_have_text("Bienvenue sur Portail En commun")
        page.goto(f"{server.url}/")
        expect(page.locator("#tile-forum-mrc")).to_have_count(0)  # no longer her territory's tool

        deadline = time.monotonic() + 15
        while not tool.tokens and time.monotonic() < deadline:
            time.sleep(0.1)
        [token] = tool.tokens
        discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=5).json()
        key_set = KeySet.import_key_set(httpx.get(discovery["jwks_uri"], timeout=5).json())
        claims = jwt.decode(token, key_set).claims
        assert claims["sid"] == phone_sid
        assert claims["aud"] == "outil-test"
        assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
    finally:
        tool.close()
        laptop.close()
        phone.close()
