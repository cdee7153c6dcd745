"""A hoster's journey in a real Chromium, from the application to the displayed configuration
snippet: apply with the charter → the federation accepts → register a Nextcloud node → serve the
challenge on a real local server → "Vérifier" → the federation approves → the secret and the
``occ user_oidc:provider`` command, shown once. Every federation page on the way is free of serious
axe violations and usable at 360 px; the public directory too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from portail.oidc import clients
from tests.browser.conftest import LiveServer, axe_check, no_horizontal_overflow, shot
from tests.conftest import PASSWORD, create_member
from tests.federation_factories import add_organization, in_db
from tests.stub_server import StubServer

pytestmark = pytest.mark.browser


def log_in(page: Page, live: LiveServer, email: str) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("Adresse courriel").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("link", name="Mon compte")).to_be_visible()


@pytest.fixture
def second_tab(browser: Browser) -> Iterator[Page]:
    """A second person's browser, closed before the server stops (an open page keeps a connection the
    server would wait for)."""
    context = browser.new_context(locale="fr-CA", extra_http_headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def check(page: Page, name: str) -> None:
    axe_check(page)
    shot(page, f"federation-{name}")


def test_a_hoster_goes_from_application_to_the_configuration_snippet(
    live_server: LiveServer, page: Page, second_tab: Page, stub_server: StubServer
) -> None:
    live = live_server
    create_member(live.settings, "alice@example.org", "Alice Hébergeuse")
    create_member(live.settings, "admin@example.org", "Ada Admin", is_admin=True)
    add_organization(live.settings, "tiess", "TIESS")
    hoster, admin = page, second_tab

    # 1. the application, with the charter
    log_in(hoster, live, "alice@example.org")
    hoster.goto(f"{live.url}/federation")
    check(hoster, "01-home")
    hoster.get_by_role("link", name="Inscrire un hébergeur").click()
    check(hoster, "02-apply")
    hoster.get_by_label("Nom de l’hébergeur").fill("Coop Nuage Libre")
    hoster.get_by_label("Site web").fill("https://nuagelibre.example")
    hoster.get_by_label("Région administrative").select_option("05")
    hoster.get_by_label("J’accepte la charte").check()
    hoster.get_by_role("button", name="Envoyer la demande").click()
    expect(hoster.get_by_text("Demande en attente de la fédération")).to_be_visible()

    # 2. the federation accepts
    log_in(admin, live, "admin@example.org")
    admin.goto(f"{live.url}/federation/admin")
    check(admin, "03-admin")
    admin.get_by_role("button", name="Accepter").click()
    expect(admin.get_by_text("L’hébergeur est accepté.")).to_be_visible()

    # 3. the node
    hoster.reload()
    check(hoster, "04-hoster")
    hoster.get_by_role("link", name="Inscrire un nœud").click()
    check(hoster, "05-node-form")
    hoster.get_by_label("Logiciel").select_option("nextcloud")
    hoster.get_by_label("Nom affiché").fill("Nuage TIESS")
    hoster.get_by_label("Adresse de base").fill(stub_server.url)
    hoster.get_by_label("Organisation desservie").select_option("tiess")
    hoster.get_by_role("button", name="Inscrire le nœud").click()
    expect(hoster.locator("#challenge-url")).to_have_text(f"{stub_server.url}/.well-known/portail-challenge")
    token = hoster.locator("#challenge-token").inner_text().strip()
    assert token.startswith("portail-")
    check(hoster, "06-challenge")

    # 4. prove the domain: first without serving (refused, explained), then serving the token
    hoster.get_by_role("button", name="Vérifier").click()
    expect(hoster.locator("#form-error")).to_contain_text("introuvable")
    stub_server.route("/.well-known/portail-challenge", token)
    hoster.get_by_role("button", name="Vérifier").click()
    expect(hoster.locator("#step-approval")).to_be_visible()

    # 5. the federation approves
    node_url = hoster.url
    admin.goto(node_url)
    admin.get_by_role("button", name="Approuver").click()
    expect(admin.locator("#instance-status")).to_have_text("actif")

    # 6. the secret and the configuration, once
    hoster.reload()
    hoster.get_by_role("button", name="Obtenir le secret et la configuration").click()
    expect(hoster.get_by_role("heading", name="Nextcloud (application user_oidc) : commande occ")).to_be_visible()
    check(hoster, "07-configuration")
    secret = hoster.locator("#client-secret").inner_text()
    client_id = hoster.locator("#client-id").inner_text()
    command = hoster.locator("pre.snippet").first.inner_text()
    assert "occ user_oidc:provider encommun" in command
    for part in (
        f"--clientid={client_id}",
        f"--clientsecret={secret}",
        "--check-bearer=1",
        "--unique-uid=0",
        "--mapping-uid=preferred_username",
        f"--discoveryuri={live.url}/.well-known/openid-configuration",
    ):
        assert part in command
    stored = in_db(live.settings, lambda s: clients.get_client(s, client_id))
    assert stored is not None and clients.verify_secret(stored, secret)
    hoster.goto(node_url)
    assert secret not in hoster.content()
    expect(hoster.get_by_role("button", name="Renouveler le secret")).to_be_visible()

    # the public directory lists it, and works on a small screen
    hoster.set_viewport_size({"width": 360, "height": 800})
    hoster.goto(f"{live.url}/federation/directory")
    expect(hoster.get_by_role("link", name="Nuage TIESS")).to_be_visible()
    check(hoster, "08-directory")
    assert no_horizontal_overflow(hoster)
