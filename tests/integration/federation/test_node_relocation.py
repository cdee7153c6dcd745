"""A node changing hands or address, through the pages and the API, with the mails they send:
transfer to another hoster (offered by one, accepted by the other; refusals, withdrawal, hosters that
do not exist or are not active), and domain move (the new URL proven before the switch, the old one
released after; a URL another node holds is refused; nothing moves on a failed proof)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import BASE_URL, create_member, csrf_from, login, outbox
from tests.integration.federation.test_api import P, call, personal_token
from tests.integration.federation.test_hoster_flow import client_row, instance_row
from tests.integration.federation.test_node_lifecycle import active_node, hoster_and_admin, register, subjects
from tests.stub_server import StubServer


def second_hoster(app: Any, settings: Settings, admin: str, name: str, email: str) -> tuple[TestClient, str, str]:
    """Another member applies as a hoster and is accepted; returns their logged-in client, token, hoster."""
    create_member(settings, email, name)
    web = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    web.__enter__()
    login(web, email)
    token = personal_token(web, ["federation:read", "federation:write"])
    body = {"name": f"Coop {name}", "contact_email": f"contact-{email}", "accept_charter": True}
    hoster = call(web, "POST", f"{P}/hosters", token, body).json()["slug"]
    assert call(web, "POST", f"{P}/hosters/{hoster}/approve", admin).status_code == 200
    return web, token, hoster


def post_form(client: TestClient, page: str, action: str, data: dict[str, str]) -> Any:
    return client.post(action, data={**data, "csrf_token": csrf_from(client.get(page).text)})


def test_a_node_is_transferred_when_both_hosters_accept(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "matrix", stub_server)
    bob_web, bob, other = second_hoster(app, settings, admin, "Bob", "bob@example.org")
    page = f"/federation/instances/{slug}"
    try:
        assert post_form(client, page, f"{page}/transfer", {"hoster": "nowhere"}).status_code == 404
        applied = call(client, "POST", f"{P}/hosters", alice, {"name": "En attente", "contact_email": "x@y.example",
                                                                "accept_charter": True}).json()["slug"]  # fmt: skip
        inactive = post_form(client, page, f"{page}/transfer", {"hoster": applied})
        assert inactive.status_code == 409 and "pas actif" in inactive.text
        assert instance_row(settings, slug).transfer_to_id is None

        offered = post_form(client, page, f"{page}/transfer", {"hoster": other})
        assert offered.status_code == 303
        assert any("Nœud proposé" in s for s in subjects(settings, "bob@example.org"))
        assert any("Nœud proposé" in s for s in subjects(settings, "contact-bob@example.org"))
        assert (
            call(client, "POST", f"{P}/instances/{slug}/transfer/decision", alice, {"accept": True}).status_code == 403
        )
        hoster_page = bob_web.get(f"/federation/hosters/{other}")
        assert "incoming-transfers" in hoster_page.text and slug in hoster_page.text
        accepted = post_form(
            bob_web,
            f"/federation/hosters/{other}",
            f"{page}/transfer/answer",
            {"decision": "accept", "next": f"/federation/hosters/{other}"},
        )
        assert accepted.status_code == 303 and accepted.headers["location"] == f"/federation/hosters/{other}"
        row = instance_row(settings, slug)
        assert row.transfer_to_id is None and row.client_id  # the client, and its secret, go with the node
        assert bob_web.get(page).status_code == 200 and client.get(page).status_code == 403
        for address in ("tech@coop.example", "contact-bob@example.org"):
            assert any("Transfert accepté" in s for s in subjects(settings, address)), address

        # offered back through the API, then refused by the receiving hoster: nothing moves
        assert call(bob_web, "POST", f"{P}/instances/{slug}/transfer", bob, {"hoster": hoster}).status_code == 200
        refused = call(client, "POST", f"{P}/instances/{slug}/transfer/decision", alice, {"accept": False})
        assert refused.status_code == 200 and refused.json()["transfer"] == "cancelled"
        assert call(bob_web, "GET", f"{P}/instances/{slug}", bob).json()["hoster"] == other
        assert any("Transfert annulé" in s for s in subjects(settings, "contact-bob@example.org"))
        again = call(client, "POST", f"{P}/instances/{slug}/transfer/decision", alice, {"accept": True})
        assert again.status_code == 409  # no offer left to accept
    finally:
        bob_web.__exit__(None, None, None)


def test_a_domain_move_is_proven_before_the_switch_and_releases_the_old_url(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    old = stub_server.url
    body = {"hoster": hoster, "software": "other", "name": "Praxis TIESS", "base_url": old, "scope": "organization",
            "organization": "tiess", "redirect_uris": [f"{old}/callback"]}  # fmt: skip
    node = call(client, "POST", f"{P}/instances", alice, body).json()
    slug = node["slug"]
    stub_server.route("/.well-known/portail-challenge", node["challenge"]["token"])
    call(client, "POST", f"{P}/instances/{slug}/verify", alice)
    call(client, "POST", f"{P}/instances/{slug}/approve", admin)
    call(client, "POST", f"{P}/instances/{slug}/secret", alice)
    call(client, "PATCH", f"{P}/instances/{slug}", alice, {"login_url": f"{old}/login"})
    assert register(client, alice, hoster, "matrix", f"{old}/autre").status_code == 201

    page = f"/federation/instances/{slug}"
    held = post_form(client, page, f"{page}/move", {"base_url": f"{old}/autre/"})
    assert held.status_code == 409 and "déjà inscrite" in held.text
    asked = post_form(client, page, f"{page}/move", {"base_url": f"{old}/nuage"})
    assert asked.status_code == 303
    shown = client.get(page).text
    assert f"{old}/nuage/.well-known/portail-challenge" in shown
    move = call(client, "GET", f"{P}/instances/{slug}", alice).json()["move"]
    failed = post_form(client, page, f"{page}/move/verify", {})
    assert failed.status_code == 422 and "404" in failed.text
    assert instance_row(settings, slug).base_url == old  # nothing moved

    stub_server.route("/nuage/.well-known/portail-challenge", move["token"])
    switched = call(client, "POST", f"{P}/instances/{slug}/move/verify", alice)
    assert switched.status_code == 200, switched.text
    view = switched.json()
    assert view["base_url"] == f"{old}/nuage" and "move" not in view
    assert view["redirect_uris"] == [f"{old}/nuage/callback"] and view["login_url"] == f"{old}/nuage/login"
    assert client_row(settings, view["client_id"]).redirect_uris == [f"{old}/nuage/callback"]
    assert any("Nœud déplacé" in s for s in subjects(settings, "tech@coop.example"))
    assert register(client, alice, hoster, "matrix", f"{old}/").status_code == 201  # the old URL is free
    assert call(client, "POST", f"{P}/instances/{slug}/move/verify", alice).status_code == 409  # no move pending
    assert len([m for m in outbox(settings) if "Nœud déplacé" in str(m["Subject"])]) == 2  # contact + admin
