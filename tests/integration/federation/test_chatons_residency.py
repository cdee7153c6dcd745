"""CHATONS StatoolInfos data and where a node's data lives (Law 25), through the pages and the API.

A hoster whose data are incomplete sees what is missing on its page and publishes nothing; once it
fills its organization data (hoster page) and its node's service data and residency (API ``PATCH``),
every file is published and each one, parsed, passes the field tables. A node whose data leave Québec
cannot be approved (409 ``pia_required``, or the page says why) until the federation records its
privacy impact assessment (API, page, CLI); members read where their data go on the consent page, in
the directory and in "Mes données"."""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.federation import commands, statoolinfos
from tests.conftest import BASE_URL, csrf_from, login, outbox
from tests.integration.federation.test_api import P, call
from tests.integration.federation.test_hoster_flow import client_row, instance_row
from tests.integration.federation.test_node_lifecycle import active_node, hoster_and_admin, register
from tests.oidc_flow import Flow
from tests.stub_server import StubServer

ISSUER = "http://portail.encommun.example.org:8000"  # a public name: StatoolInfos URLs have a dot in them
STATOOL = "/federation/statoolinfos"


@pytest.fixture
def federation_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        issuer=ISSUER,
        federation_contact_email="federation@encommun.example.org",
        federation_start_date="2026-11-01",
    )


@pytest.fixture
def web(federation_settings: Settings) -> Any:
    app = create_app(federation_settings)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        yield app, client


def fetch(client: TestClient, url: str) -> Any:
    return client.get(url.removeprefix(ISSUER))


def crawl(client: TestClient) -> dict[str, dict[str, str]]:
    """What a CHATONS crawler reads: the federation file, then every file it links, checked on the way."""
    root = fetch(client, f"{STATOOL}/federation.properties")
    assert root.status_code == 200, root.text
    files = {"federation": statoolinfos.parse(root.text)}
    pending = [v for k, v in files["federation"].items() if k.startswith("subs.")]
    while pending:
        url = pending.pop()
        answer = fetch(client, url)
        assert answer.status_code == 200, (url, answer.text)
        props = statoolinfos.parse(answer.text)
        files[url] = props
        pending.extend(v for k, v in props.items() if k.startswith("subs."))
    for props in files.values():
        assert statoolinfos.problems(props["file.class"], props, "encommun") == [], props
    return files


def test_a_hoster_fills_its_chatons_data_and_its_files_are_published_and_valid(
    web: Any, member: Member, federation_settings: Settings, stub_server: StubServer
) -> None:
    app, client = web
    alice, admin, hoster = hoster_and_admin(app, client, federation_settings)
    slug = active_node(client, alice, admin, hoster, "nextcloud", stub_server)

    # nothing supplied yet: nothing published, and the hoster's page says what is missing
    assert fetch(client, f"{STATOOL}/hosters/{hoster}.properties").status_code == 404
    withheld = fetch(client, f"{STATOOL}/services/{slug}.properties")
    assert withheld.status_code == 404 and "service.registration" in withheld.text
    assert not [k for k in crawl(client)["federation"] if k.startswith("subs.")]
    page = client.get(f"/federation/hosters/{hoster}")
    assert (
        "Fiche CHATONS" in page.text and "type d’organisation" in page.text and "politique d’inscription" in page.text
    )

    # the hoster's administrator fills the organization data on the hoster's page
    bad = client.post(
        f"/federation/hosters/{hoster}/organization",
        data={"csrf_token": csrf_from(page.text), "organization_type": "CORPORATION", "contact_email": "x"},
    )
    assert bad.status_code == 400 and "Type d’organisation inconnu" in bad.text
    saved = client.post(
        f"/federation/hosters/{hoster}/organization",
        data={
            "csrf_token": csrf_from(page.text),
            "organization_type": "COOPERATIVE",
            "description": "Coopérative de travail\nqui héberge = des nuages : libres",
            "website": "https://coop-nuage.example.org",
            "contact_email": "bonjour@coop-nuage.example.org",
            "legal_url": "https://coop-nuage.example.org/mentions",
            "terms_url": "https://coop-nuage.example.org/cgu",
            "logo_url": "",
            "start_date": "2014-05-01",
        },
    )
    assert saved.status_code == 303, saved.text

    # the node's service data and residency, through the API (bad values first)
    for body, needle in (
        ({"registration": "Everyone"}, "registration policy"),
        ({"install_type": "MAGIC"}, "install type"),
        ({"data_location": "XX", "backup_location": "CA-QC"}, "Unknown place"),
        ({"data_location": "CA-QC"}, "backups"),
        ({"legal_url": "javascript:alert(1)"}, "web address"),
    ):
        refused = call(client, "PATCH", f"{P}/instances/{slug}", alice, body)
        assert refused.status_code == 400 and needle in refused.json()["error_description"], refused.text
    patched = call(
        client,
        "PATCH",
        f"{P}/instances/{slug}",
        alice,
        {
            "description": "Fichiers, agendas ’ et contacts 🗂",
            "registration": "Member",
            "install_type": "PROVIDER",
            "data_location": "ca-qc",
            "backup_location": "CA-QC",
            "hosting_provider": "Koumbit",
            "provider_type": "HOSTEDBAY",
            "server_type": "VIRTUAL",
            "guide_url": "https://coop-nuage.example.org/guide",
        },
    )
    assert patched.status_code == 200, patched.text
    node = patched.json()
    assert node["data_location"] == "CA-QC" and node["registration"] == "Member"
    assert {"registration", "data_location", "hosting_provider"} <= set(node["changed"])

    files = crawl(client)  # every file published, parsed and checked against the field tables
    organization = files[f"{ISSUER}{STATOOL}/hosters/{hoster}.properties"]
    assert organization["organization.type"] == "COOPERATIVE"
    assert organization["organization.description"] == "Coopérative de travail\nqui héberge = des nuages : libres"
    assert organization["organization.memberof.encommun.status.level"] == "ACTIVE"
    assert organization["organization.memberof.encommun.startdate"]
    service = files[f"{ISSUER}{STATOOL}/services/{slug}.properties"]
    assert service["service.description"] == "Fichiers, agendas ’ et contacts 🗂"  # \\u escapes read back
    assert service["service.legal.url"] == "https://coop-nuage.example.org/cgu"  # the hoster's terms
    assert service["host.provider"] == "Koumbit" and service["host.country.code"] == "CA"
    assert service["software.license.name"] == "AGPL-3.0" and service["service.install.type"] == "PROVIDER"
    raw = fetch(client, f"{STATOOL}/services/{slug}.properties").text
    assert "\\u2019" in raw and "\\ud83d\\uddc2" in raw and "https://coop-nuage" in raw  # URLs unescaped
    assert "Fiche CHATONS" in client.get(f"/federation/hosters/{hoster}").text
    assert "Vos fiches sont complètes et publiées." in client.get(f"/federation/hosters/{hoster}").text


def test_a_node_whose_data_leave_quebec_waits_for_its_privacy_impact_assessment(
    web: Any, member: Member, federation_settings: Settings, stub_server: StubServer
) -> None:
    app, client = web
    alice, admin, hoster = hoster_and_admin(app, client, federation_settings)
    node = register(client, alice, hoster, "nextcloud", stub_server.url).json()
    slug = node["slug"]
    stub_server.route("/.well-known/portail-challenge", node["challenge"]["token"])
    assert call(client, "POST", f"{P}/instances/{slug}/verify", alice).status_code == 200
    body = {"data_location": "CA-ON", "backup_location": "CA-QC", "hosting_provider": "OVHcloud"}
    assert call(client, "PATCH", f"{P}/instances/{slug}", alice, body).status_code == 200

    refused = call(client, "POST", f"{P}/instances/{slug}/approve", admin)
    assert refused.status_code == 409 and refused.json()["error"] == "pia_required", refused.text
    assert instance_row(federation_settings, slug).status == "awaiting-approval"
    assert call(client, "POST", f"{P}/instances/{slug}/pia", alice).status_code == 403  # the hoster cannot
    recorded = call(client, "POST", f"{P}/instances/{slug}/pia", admin, {"note": "EFVP 2026-12 (dossier 42)"})
    assert recorded.status_code == 200 and recorded.json()["pia_recorded_at"]
    assert any("EFVP enregistrée" in str(m["Subject"]) for m in outbox(federation_settings))
    assert call(client, "POST", f"{P}/instances/{slug}/approve", admin).status_code == 200
    assert call(client, "POST", f"{P}/instances/{slug}/secret", alice).status_code == 200

    # a member is told before consenting; the directory and "Mes données" say it too
    flow = Flow(
        client, client_row(federation_settings, slug).client_id, redirect_uri=f"{stub_server.url}/apps/user_oidc/code"
    )
    start = flow.authorize()
    consent_url = start.headers["location"]  # Alice is logged in already: straight to the consent page
    assert "/consent/" in consent_url, consent_url
    consent = client.get(urlsplit(consent_url).path)
    assert consent.status_code == 200, consent.text
    assert "vos données sortent du Québec" in consent.text and "Ontario (Canada)" in consent.text
    assert "Hébergé chez OVHcloud" in consent.text and "Loi 25" in consent.text
    allowed = client.post(urlsplit(consent_url).path, data={"csrf_token": csrf_from(consent.text), "decision": "allow"})
    assert allowed.status_code in (302, 303), allowed.text
    mine = client.get("/account/data")
    assert "Vos données sortent du Québec : Ontario (Canada)" in mine.text and "Hébergé chez OVHcloud" in mine.text
    directory = client.get("/federation/directory")
    assert "Vos données sortent du Québec" in directory.text
    entry = client.get("/federation/directory.json").json()["instances"][0]["data_residency"]
    assert entry == {
        "declared": True,
        "in_quebec": False,
        "data_location": "CA-ON",
        "backup_location": "CA-QC",
        "hosting_provider": "OVHcloud",
        "provider_type": None,
        "pia_recorded": True,
    }


def test_the_page_and_the_command_record_the_assessment_the_approval_waits_for(
    web: Any, member: Member, federation_settings: Settings, stub_server: StubServer
) -> None:
    app, client = web
    alice, admin, hoster = hoster_and_admin(app, client, federation_settings)
    slugs = []
    for n, base in enumerate((stub_server.url, stub_server.url.replace("127.0.0.1", "localhost"))):
        node = register(client, alice, hoster, "nextcloud", f"{base}/n{n}").json()
        stub_server.route(f"/n{n}/.well-known/portail-challenge", node["challenge"]["token"])
        assert call(client, "POST", f"{P}/instances/{node['slug']}/verify", alice).status_code == 200, node
        slugs.append(node["slug"])
    # the hoster declares on the node's edit form: data in France
    edit = client.get(f"/federation/instances/{slugs[0]}/edit")
    assert 'name="data_location"' in edit.text and "Colombie-Britannique" in edit.text
    values = {
        "csrf_token": csrf_from(edit.text),
        "version": instance_row(federation_settings, slugs[0]).updated_at.isoformat(),
        "name": "Nuage France",
        "push_notifications": "false",
        "provider_identifier": "encommun",
        "data_location": "FR",
        "backup_location": "FR",
        "provider_type": "OUTSOURCED",
    }
    assert client.post(f"/federation/instances/{slugs[0]}/edit", data=values).status_code == 303
    assert (
        call(
            client, "PATCH", f"{P}/instances/{slugs[1]}", alice, {"data_location": "US", "backup_location": "US"}
        ).status_code
        == 200
    )

    # the federation administrator: approve on the page is refused with the reason, then the EFVP is recorded
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as fed:
        login(fed, "admin@example.org")
        page = fed.get(f"/federation/instances/{slugs[0]}")
        assert "Enregistrer l’EFVP faite" in page.text and "France" in page.text
        token = csrf_from(page.text)
        refused = fed.post(
            f"/federation/instances/{slugs[0]}/decision", data={"csrf_token": token, "action": "approve"}
        )
        assert refused.status_code == 409 and "évaluation des facteurs relatifs à la vie privée" in refused.text
        recorded = fed.post(f"/federation/instances/{slugs[0]}/pia", data={"csrf_token": token, "note": "dossier 7"})
        assert recorded.status_code == 303
        approved = fed.post(
            f"/federation/instances/{slugs[0]}/decision", data={"csrf_token": token, "action": "approve"}
        )
        assert approved.status_code == 303 and instance_row(federation_settings, slugs[0]).status == "active"
        assert "EFVP enregistrée le" in fed.get(f"/federation/instances/{slugs[0]}").text
        # a hoster's person sees the explanation but no button
        assert "Enregistrer l’EFVP faite" not in client.get(f"/federation/instances/{slugs[1]}").text

    # the command line: portail instances pia SLUG
    assert commands.cmd_pia(argparse.Namespace(slug="nope", note=""), federation_settings) == 1
    assert commands.cmd_pia(argparse.Namespace(slug=slugs[1], note="EFVP US"), federation_settings) == 0
    assert call(client, "POST", f"{P}/instances/{slugs[1]}/approve", admin).status_code == 200


def test_portail_publishes_its_own_nodeinfo(web: Any, member: Member) -> None:
    """NodeInfo 2.1 (nodeinfo.diaspora.software/ns/schema/2.1): discovery, then the document's required keys."""
    _app, client = web
    found = client.get("/.well-known/nodeinfo")
    assert found.status_code == 200
    (link,) = found.json()["links"]
    assert link == {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": f"{ISSUER}/nodeinfo/2.1"}
    answer = client.get("/nodeinfo/2.1")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    doc = answer.json()
    assert set(doc) == {"version", "software", "protocols", "services", "openRegistrations", "usage", "metadata"}
    assert doc["version"] == "2.1" and re.fullmatch(r"[a-z0-9-]+", doc["software"]["name"])
    assert doc["software"]["version"] and set(doc["software"]) <= {"name", "version", "repository", "homepage"}
    assert doc["protocols"] == []  # Portail speaks none of the schema's federation protocols (see nodeinfo.py)
    assert doc["services"] == {"inbound": [], "outbound": []} and doc["openRegistrations"] is True
    users = doc["usage"]["users"]
    assert users["total"] == 1 and users["activeMonth"] == users["activeHalfyear"] == 0  # Alice never logged in
    assert doc["metadata"]["nodeName"] == "Fédération En commun (Québec)"


def test_a_hoster_edits_its_chatons_organization_data_through_the_api(web: Any, member: Member) -> None:
    app, client = web
    alice, admin, hoster = hoster_and_admin(app, client, app.state.settings)
    url = f"{P}/hosters/{hoster}"
    body = {
        "organization_type": "COOPERATIVE",
        "description": "Coopérative d’hébergement libre.",
        "legal_url": "https://coop.example/mentions",
        "terms_url": "https://coop.example/cgu",
        "start_date": "2019-05-01",
    }
    edited = call(client, "PATCH", url, alice, body)
    assert edited.status_code == 200, edited.text
    view = edited.json()
    assert sorted(view["changed"]) == sorted(body)
    assert (view["organization_type"], view["start_date"], view["terms_url"]) == (
        "COOPERATIVE",
        "2019-05-01",
        "https://coop.example/cgu",
    )
    assert call(client, "PATCH", url, alice, body).json()["changed"] == []  # the same again changes nothing
    assert call(client, "GET", url, alice).json()["legal_url"] == "https://coop.example/mentions"

    # bad input: clear errors (the API speaks English), nothing half-saved
    for bad, words in [
        ({"organization_type": "CORPORATION"}, "Unknown organization type"),
        ({"legal_url": "ftp:nope"}, "full web address"),
        ({"start_date": "2019-13-45"}, "YYYY-MM-DD"),
        ({"status": "active"}, "Unknown or read-only keys: status"),
        ({"description": ["not", "text"]}, "must be a string"),
        ({"description": "x" * 2001, "terms_url": "https://coop.example/autre"}, "2000"),
    ]:
        refused = call(client, "PATCH", url, alice, bad)
        assert refused.status_code == 400, (bad, refused.text)
        assert words in refused.json()["error_description"], (bad, refused.json())
    assert call(client, "GET", url, alice).json()["terms_url"] == "https://coop.example/cgu"
    cleared = call(client, "PATCH", url, admin, {"description": None, "start_date": ""})
    assert cleared.status_code == 200 and (cleared.json()["description"], cleared.json()["start_date"]) == ("", None)
