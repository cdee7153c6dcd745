"""An organization or territory in control of what serves its members, through the pages and the
API, with the mails they send: a node that claims to serve it appears to its members only once its
administrators accept it (accept once, refuse, withdraw later; not after retirement), and a
members-only instance is refused at ``/authorize`` to other accounts (with a page saying why; OIDC
Core §3.1.2.6 ``access_denied`` with ``prompt=none``) while its snippets set the software's own
restriction."""

from __future__ import annotations

from html import unescape
from typing import Any

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.federation import audience, snippets
from portail.federation.models import Instance
from tests.conftest import BASE_URL, PASSWORD, create_member, csrf_from, login, outbox
from tests.federation_factories import add_membership, in_db
from tests.integration.federation.test_api import P, call
from tests.integration.federation.test_hoster_flow import instance_row
from tests.integration.federation.test_node_lifecycle import hoster_and_admin, register, subjects
from tests.oidc_flow import Flow, query_of
from tests.stub_server import StubServer


def sees(settings: Settings, email: str, slug: str) -> bool:
    def visible(session: Any) -> bool:
        member = session.exec(select(Member).where(Member.email_key == email)).one()
        return slug in {i.slug for i in audience.visible_instances(session, member)}

    return in_db(settings, visible)


def decide(web: TestClient, slug: str, decision: str) -> Any:
    page = web.get("/federation/organizations/tiess")
    data = {"csrf_token": csrf_from(page.text), "decision": decision, "next": "/federation/organizations/tiess"}
    return web.post(f"/federation/instances/{slug}/organization", data=data)


def approved_node(client: TestClient, alice: str, admin: str, hoster: str, stub: StubServer) -> tuple[str, str, str]:
    """A Nextcloud node claiming TIESS, proven and approved; returns its slug, client id and secret."""
    node = register(client, alice, hoster, "nextcloud", stub.url).json()
    stub.route("/.well-known/portail-challenge", node["challenge"]["token"])
    call(client, "POST", f"{P}/instances/{node['slug']}/verify", alice)
    call(client, "POST", f"{P}/instances/{node['slug']}/approve", admin)
    secret = call(client, "POST", f"{P}/instances/{node['slug']}/secret", alice).json()
    return node["slug"], secret["client_id"], secret["client_secret"]


def test_a_node_serves_an_organizations_members_only_once_it_accepts(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    for email, role in (("carol@example.org", "admin"), ("dave@example.org", "member")):
        create_member(settings, email, email.split("@")[0].title())
        add_membership(settings, "tiess", email, role)
    slug, _client_id, _secret = approved_node(client, alice, admin, hoster, stub_server)
    claim = [m for m in outbox(settings) if "dit desservir TIESS" in str(m["Subject"])]
    assert [str(m["To"]) for m in claim] == ["carol@example.org"]
    assert instance_row(settings, slug).status == "active" and not sees(settings, "dave@example.org", slug)
    assert "En attente de l’acceptation de TIESS" in client.get(f"/federation/instances/{slug}").text
    forbidden = call(client, "POST", f"{P}/instances/{slug}/organization", alice, {"decision": "accept"})
    assert forbidden.status_code == 403  # the hoster cannot accept on the organization's behalf

    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as carol:
        login(carol, "carol@example.org")
        assert "Nœuds qui disent vous desservir" in carol.get("/federation/organizations/tiess").text
        assert decide(carol, slug, "accept").status_code == 303
        assert sees(settings, "dave@example.org", slug)
        accepted = [m for m in outbox(settings) if "Nœud accepté par TIESS" in str(m["Subject"])]
        assert {str(m["To"]) for m in accepted} == {"tech@coop.example", "alice@example.org"}
        twice = decide(carol, slug, "accept")
        assert twice.status_code == 409 and "Déjà décidé" in twice.text
        assert decide(carol, slug, "withdraw").status_code == 303
        assert not sees(settings, "dave@example.org", slug)
        assert any("retire son acceptation" in s for s in subjects(settings, "tech@coop.example"))

        # a claim about a node retired meanwhile cannot be accepted
        other = register(client, alice, hoster, "matrix", f"{stub_server.url}/chat").json()["slug"]
        assert call(client, "DELETE", f"{P}/instances/{other}", alice, {"reason": "erreur"}).status_code == 200
        late = decide(carol, other, "accept")
        assert late.status_code == 409 and "retiré" in late.text


def test_a_members_only_instance_is_refused_to_other_accounts_with_a_clear_page(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    create_member(settings, "carol@example.org", "Carol")
    add_membership(settings, "tiess", "carol@example.org", "admin")
    slug, client_id, secret = approved_node(client, alice, admin, hoster, stub_server)
    not_a_flag = call(client, "PATCH", f"{P}/instances/{slug}", alice, {"members_only": "yes"})
    assert not_a_flag.status_code == 400
    restricted = call(client, "PATCH", f"{P}/instances/{slug}", alice, {"members_only": True})
    assert restricted.status_code == 200 and restricted.json()["members_only"] is True
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as carol:
        login(carol, "carol@example.org")
        assert decide(carol, slug, "accept").status_code == 303
        page = unescape(client.get(f"/federation/instances/{slug}").text)
        assert "--group-whitelist-regex='/^(tiess)$/'" in page and "--group-restrict-login-to-whitelist=1" in page

        redirect_uri = f"{stub_server.url}/apps/user_oidc/code"
        allowed = Flow(carol, client_id, secret, redirect_uri=redirect_uri).code()
        assert "code" in allowed  # a member of TIESS logs in

    outsider = Flow(client, client_id, secret, redirect_uri=redirect_uri)  # alice: not a member of TIESS
    refused = outsider.authorize()
    assert refused.status_code == 403
    assert "réservé aux membres des organisations qu’il dessert" in refused.text
    silent = outsider.authorize(prompt="none")
    assert silent.status_code in (302, 303) and query_of(silent.headers["location"])["error"] == "access_denied"
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as english:
        create_member(settings, "erin@example.org", "Erin", locale="en")
        flow = Flow(english, client_id, secret, redirect_uri=redirect_uri)
        start = flow.authorize()
        page = english.get(flow.log_in(start.headers["location"], "erin@example.org", PASSWORD).headers["location"])
        assert page.status_code == 403 and "reserved for members of the organizations it serves" in page.text


def test_the_synapse_snippet_requires_the_groups_claim_of_a_members_only_instance() -> None:
    node = Instance(slug="chat", name="Chat", software="matrix", base_url="https://chat.example", members_only=True)
    one = snippets.synapse("https://portail.example", node, "chat", None, ["tiess"])
    assert 'scopes: ["openid", "profile", "email", "groups"]' in one
    assert 'attribute_requirements:\n      - attribute: groups\n        value: "tiess"' in one
    two = snippets.synapse("https://portail.example", node, "chat", None, ["quartier", "tiess"])
    assert 'one_of: ["quartier", "tiess"]' in two
    assert "attribute_requirements" not in snippets.synapse("https://portail.example", node, "chat", None)
