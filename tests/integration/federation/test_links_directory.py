"""Organizations and territories link instances (the hoster confirms) or ask a hoster to host one;
the public directory with its filters, JSON and CHATONS StatoolInfos export (federation → hosters →
services)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.federation import audience, statoolinfos
from portail.federation.models import Hoster, Instance, InstanceLink
from tests.conftest import BASE_URL, create_member, csrf_from, login, mail_text, outbox
from tests.federation_factories import add_hoster, add_instance, add_membership, add_organization, in_db


def post(client: TestClient, page: str, action: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(action, data={**data, "csrf_token": csrf_from(client.get(page).text)})


def test_an_organization_admin_links_an_instance_and_its_hoster_confirms(
    app,
    client: TestClient,
    member: Member,
    settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    create_member(settings, "bob@example.org", "Bob Hébergeur")
    add_organization(settings, "tiess", "TIESS")
    add_membership(settings, "tiess", "alice@example.org", role="admin")
    add_hoster(settings, "coop", "bob@example.org")
    add_organization(settings, "chantier", "Chantier")
    add_instance(
        settings, "nuage-coop", hoster="coop", scope="organization", organization="chantier", client_id="nuage-coop"
    )
    login(client)
    page = client.get("/federation/organizations/tiess")
    assert page.status_code == 200 and "Nuage Coop" in page.text
    asked = post(
        client, "/federation/organizations/tiess", "/federation/organizations/tiess/links", {"instance": "nuage-coop"}
    )
    assert asked.status_code == 303
    mail = [m for m in outbox(settings) if "Demande de lien" in str(m["Subject"])]
    assert {m["To"] for m in mail} == {"contact@coop.example", "bob@example.org"}
    again = post(
        client, "/federation/organizations/tiess", "/federation/organizations/tiess/links", {"instance": "nuage-coop"}
    )
    assert again.status_code == 409

    link_id = in_db(settings, lambda s: s.exec(select(InstanceLink)).one().id)
    assert (
        post(
            client, "/federation/organizations/tiess", f"/federation/links/{link_id}/decision", {"decision": "accept"}
        ).status_code
        == 403
    )  # the organization cannot confirm for the hoster
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as hoster:
        login(hoster, "bob@example.org")
        instance_page = hoster.get("/federation/instances/nuage-coop")
        assert "TIESS" in instance_page.text
        confirmed = post(
            hoster,
            "/federation/instances/nuage-coop",
            f"/federation/links/{link_id}/decision",
            {"decision": "accept", "next": "/federation/instances/nuage-coop"},
        )
        assert confirmed.status_code == 303
    assert in_db(settings, lambda s: s.exec(select(InstanceLink)).one().status) == "active"

    def groups(session):  # type: ignore[no-untyped-def]
        alice = session.exec(select(Member).where(Member.email_key == "alice@example.org")).one()
        return audience.groups_for(session, alice, "nuage-coop")

    assert in_db(settings, groups) == ["tiess"]
    removed = post(
        client,
        "/federation/organizations/tiess",
        f"/federation/links/{link_id}/remove",
        {"next": "/federation/organizations/tiess"},
    )
    assert removed.status_code == 303
    assert in_db(settings, groups) == []


def test_an_organization_admin_asks_a_hoster_to_host_an_instance(
    client: TestClient, member: Member, settings: Settings
) -> None:
    add_organization(settings, "tiess", "TIESS")
    add_membership(settings, "tiess", "alice@example.org", role="admin")
    add_hoster(settings, "coop")
    login(client)
    asked = post(
        client,
        "/federation/organizations/tiess",
        "/federation/organizations/tiess/hosting",
        {"hoster": "coop", "software": "Nextcloud", "message": "Pour 40 personnes"},
    )
    assert asked.status_code == 303
    mail = next(m for m in outbox(settings) if "Demande d’hébergement" in str(m["Subject"]))
    assert mail["To"] == "contact@coop.example"
    assert "alice@example.org" in mail_text(mail) and "Pour 40 personnes" in mail_text(mail)


def test_only_organization_admins_manage_its_links(client: TestClient, member: Member, settings: Settings) -> None:
    add_organization(settings, "tiess", "TIESS")
    add_membership(settings, "tiess", "alice@example.org", role="member")
    login(client)
    assert client.get("/federation/organizations/tiess").status_code == 403
    token = csrf_from(client.get("/federation").text)
    refused = client.post("/federation/organizations/tiess/links", data={"csrf_token": token, "instance": "x"})
    assert refused.status_code == 403


def _directory_world(settings: Settings) -> None:
    add_organization(settings, "tiess", "TIESS")
    add_organization(settings, "mrc-memphremagog", "MRC de Memphrémagog", kind="territory", region="05")
    add_hoster(settings, "coop", region="06")
    add_hoster(settings, "koumbit", region="05")
    add_instance(settings, "chat-central", software="matrix", hoster="coop")
    add_instance(
        settings, "nuage-tiess", software="nextcloud", hoster="coop", scope="organization", organization="tiess"
    )
    add_instance(
        settings,
        "nuage-mrc",
        software="nextcloud",
        hoster="koumbit",
        scope="territorial",
        organization="mrc-memphremagog",
        base_url="https://nuage.mrc-memphremagog.ca",  # a real name: the .example ones are demo entries
    )
    add_instance(settings, "en-attente", software="nextcloud", hoster="koumbit", status="awaiting-approval")


def test_the_directory_filters_by_region_software_hoster_and_organization(
    client: TestClient, settings: Settings
) -> None:
    _directory_world(settings)

    def slugs(query: str) -> list[str]:
        return [i["slug"] for i in client.get(f"/federation/directory.json{query}").json()["instances"]]

    assert slugs("") == ["chat-central", "nuage-mrc", "nuage-tiess"]
    assert slugs("?software=nextcloud") == ["nuage-mrc", "nuage-tiess"]
    assert slugs("?region=05") == ["nuage-mrc"]
    assert slugs("?region=06") == ["chat-central", "nuage-tiess"]
    assert slugs("?hoster=koumbit") == ["nuage-mrc"]
    assert slugs("?organization=tiess") == ["nuage-tiess"]
    assert slugs("?software=%ff&region=zz") == []
    assert client.get("/federation/directory.json?software=%00").status_code == 400  # NUL: refused everywhere
    page = client.get("/federation/directory?software=nextcloud&region=05")
    assert page.status_code == 200
    assert "Nuage Mrc" in page.text and "Nuage Tiess" not in page.text and "En Attente" not in page.text


ISSUER = "http://portail.encommun.example.org:8000"


def _complete_chatons_data(session: Session) -> None:
    """What hosters fill on their page and node form (tests/journeys/test_chatons_residency.py does it there)."""
    for hoster in session.exec(select(Hoster)):
        hoster.organization_type, hoster.start_date = "COOPERATIVE", dt.date(2014, 5, 1)
        hoster.description = hoster.description or f"{hoster.name} héberge des logiciels libres"
        hoster.contact_email, hoster.website = (
            f"bonjour@{hoster.slug}.example.org",
            f"https://{hoster.slug}.example.org",
        )
        session.add(hoster)
    for instance in session.exec(select(Instance)):
        instance.description = instance.description or "Nuage"
        instance.registration, instance.install_type = "Member", "PROVIDER"
        instance.data_location = instance.backup_location = "CA-QC"
        instance.hosting_provider, instance.provider_type, instance.server_type = "Koumbit", "HOSTEDBAY", "VIRTUAL"
        session.add(instance)


def test_statoolinfos_files_link_federation_to_hosters_to_services(settings: Settings) -> None:
    settings = dataclasses.replace(  # a public name: the specification's URLs have a dot in them
        settings,
        issuer=ISSUER,
        federation_contact_email="federation@encommun.example.org",
        federation_start_date="2026-11-01",
    )
    client = TestClient(create_app(settings), base_url=BASE_URL)
    _directory_world(settings)
    # hosters that supplied nothing: their files are withheld, and the federation file links none of them
    withheld = client.get("/federation/statoolinfos/hosters/koumbit.properties")
    assert withheld.status_code == 404 and "organization.type" in withheld.text
    in_db(settings, _complete_chatons_data)
    federation = client.get("/federation/statoolinfos/federation.properties")
    assert federation.status_code == 200 and federation.headers["content-type"].startswith("text/plain")

    root = statoolinfos.parse(federation.text)
    assert root["file.class"] == "federation" and root["federation.contact.email"] == "federation@encommun.example.org"
    subs = {k: v for k, v in root.items() if k.startswith("subs.")}
    assert subs == {
        "subs.coop": f"{ISSUER}/federation/statoolinfos/hosters/coop.properties",
        "subs.koumbit": f"{ISSUER}/federation/statoolinfos/hosters/koumbit.properties",
    }
    koumbit = statoolinfos.parse(client.get(subs["subs.koumbit"].removeprefix(ISSUER)).text)
    assert koumbit["file.class"] == "organization" and koumbit["organization.name"] == "Koumbit"
    assert koumbit["organization.geography"] == "Estrie"
    services = [v for k, v in koumbit.items() if k.startswith("subs.")]
    assert services == [f"{ISSUER}/federation/statoolinfos/services/nuage-mrc.properties"]  # not the pending one
    service = statoolinfos.parse(client.get(services[0].removeprefix(ISSUER)).text)
    assert service["file.class"] == "service"
    assert service["software.name"] == "Nextcloud" and service["host.name"] == "Koumbit"
    assert service["service.website"] == "https://nuage.mrc-memphremagog.ca"
    assert service["host.country.code"] == "CA" and "Québec" in service["host.description"]
    coop = statoolinfos.parse(client.get(subs["subs.coop"].removeprefix(ISSUER)).text)
    assert not [k for k in coop if k.startswith("subs.")]  # demo entries (.example) are never exported
    assert client.get("/federation/statoolinfos/services/chat-central.properties").status_code == 404
    assert client.get("/federation/statoolinfos/services/en-attente.properties").status_code == 404
    assert client.get("/federation/statoolinfos/hosters/nobody.properties").status_code == 404
    client.close()


def test_the_directory_is_linked_from_every_page_and_speaks_english_on_request(client: TestClient) -> None:
    assert 'href="/federation/directory"' in client.get("/login").text
    english = client.get("/federation/directory", headers={"Accept-Language": "en"})
    assert "Federation directory" in english.text and "Hosters’ space" in english.text
    assert "Charter accepted" not in english.text
    assert "Federation charter" in client.get("/federation/charter", headers={"Accept-Language": "en"}).text
