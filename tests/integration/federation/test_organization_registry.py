"""Organizations and territories created and edited by the federation: on the administrators' page
and with ``portail organizations create|edit|list [--json]`` (region by code or by name); members
who are not federation administrators are refused; bad input gets a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.models import Member, Organization
from portail.config import Settings
from tests.conftest import BASE_URL, create_member, csrf_from, login
from tests.federation_factories import in_db
from tests.integration.test_cli import portail


def organization(settings: Settings, slug: str) -> Organization:
    return in_db(settings, lambda s: s.exec(select(Organization).where(Organization.slug == slug)).one())


def test_the_federation_creates_and_edits_organizations_on_its_page(
    app: Any, client: TestClient, member: Member, settings: Settings
) -> None:
    login(client)
    assert client.get("/federation/admin/organizations").status_code == 403  # alice is not an administrator
    create_member(settings, "admin@example.org", "Ada Admin", is_admin=True)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as admin:
        login(admin, "admin@example.org")
        page = admin.get("/federation/admin/organizations")
        assert page.status_code == 200 and 'id="create-organization"' in page.text
        values = {
            "csrf_token": csrf_from(page.text),
            "slug": "",
            "name": "Table de quartier Saint-Roch",
            "kind": "territory",
            "region": "03",
            "locality": "Québec",
            "website": "https://saint-roch.example",
            "contact_email": "info@saint-roch.example",
        }
        created = admin.post("/federation/admin/organizations", data=values)
        assert created.status_code == 303 and created.headers["location"].endswith("/table-de-quartier-saint-roch")
        row = organization(settings, "table-de-quartier-saint-roch")
        assert (row.kind, row.region, row.locality, row.contact_email) == (
            "territory",
            "03",
            "Québec",
            "info@saint-roch.example",
        )
        duplicate = admin.post("/federation/admin/organizations", data={**values, "slug": row.slug})
        assert duplicate.status_code == 409 and "déjà pris" in duplicate.text
        bad = admin.post("/federation/admin/organizations", data={**values, "slug": "x", "website": "saint-roch"})
        assert bad.status_code == 400 and "Site Web" in bad.text

        edit_page = admin.get(f"/federation/admin/organizations/{row.slug}")
        assert edit_page.status_code == 200 and "info@saint-roch.example" in edit_page.text
        edited = admin.post(
            f"/federation/admin/organizations/{row.slug}",
            data={**values, "csrf_token": csrf_from(edit_page.text), "name": "TQ Saint-Roch", "contact_email": "x"},
        )
        assert edited.status_code == 400 and "courriel de contact est invalide" in edited.text
        edited = admin.post(
            f"/federation/admin/organizations/{row.slug}",
            data={**values, "csrf_token": csrf_from(edit_page.text), "name": "TQ Saint-Roch"},
        )
        assert edited.status_code == 303 and organization(settings, row.slug).name == "TQ Saint-Roch"
    assert client.post(f"/federation/admin/organizations/{row.slug}", data={}).status_code in (400, 403)


def test_organizations_from_the_command_line_with_the_region_by_name(tmp_path: Path, settings: Settings) -> None:
    url = settings.database_url
    made = portail(
        tmp_path, url, "organizations", "create", "tiess", "--name", "TIESS", "--region", "Montréal",
        "--website", "https://tiess.example", "--contact", "info@tiess.example", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["region"] == "06"
    territory = portail(
        tmp_path, url, "organizations", "create", "mrc-memphremagog", "--name", "MRC de Memphrémagog",
        "--kind", "territory", "--region", "5", "--locality", "Magog",
    )  # fmt: skip
    assert territory.returncode == 0 and "créée / organization mrc-memphremagog created" in territory.stdout
    unknown = portail(tmp_path, url, "organizations", "edit", "tiess", "--region", "Atlantide")
    assert unknown.returncode == 1
    assert "Région inconnue : Atlantide" in unknown.stderr and "Unknown region: Atlantide" in unknown.stderr
    renamed = portail(tmp_path, url, "organizations", "edit", "tiess", "--region", "estrie", "--name", "TIESS Estrie")
    assert renamed.returncode == 0, renamed.stderr
    missing = portail(tmp_path, url, "organizations", "edit", "nowhere", "--name", "x")
    assert missing.returncode == 1
    listed = json.loads(portail(tmp_path, url, "organizations", "list", "--json").stdout)
    assert [(o["slug"], o["kind"], o["region"], o["name"]) for o in listed] == [
        ("tiess", "organization", "05", "TIESS Estrie"),
        ("mrc-memphremagog", "territory", "05", "MRC de Memphrémagog"),
    ]
    assert listed[0]["contact_email"] == "info@tiess.example" and listed[1]["locality"] == "Magog"


def test_an_organization_is_described_in_french_and_english_and_members_read_their_language(
    app: Any, client: TestClient, member: Member, settings: Settings
) -> None:
    create_member(settings, "admin@example.org", "Ada Admin", is_admin=True)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as admin:
        login(admin, "admin@example.org")
        page = admin.get("/federation/admin/organizations")
        assert 'name="description_en"' in page.text
        values = {
            "csrf_token": csrf_from(page.text),
            "slug": "tiess",
            "name": "TIESS",
            "kind": "organization",
            "description": "Territoires innovants en économie sociale",
            "description_en": "Innovative territories in the social economy",
        }
        assert admin.post("/federation/admin/organizations", data=values).status_code == 303
        edit_page = admin.get("/federation/admin/organizations/tiess")
        assert "Innovative territories in the social economy</textarea>" in edit_page.text
    assert organization(settings, "tiess").description_en == "Innovative territories in the social economy"

    def speak(language: str) -> str:
        def update(session: Any) -> None:
            row = session.get(Member, member.id)
            row.locale = language
            session.add(row)

        in_db(settings, update)
        shown = client.get("/organizations/tiess")
        assert shown.status_code == 200, shown.text
        start = shown.text.index('<p id="organization-description"')
        return shown.text[start : shown.text.index("</p>", start)]

    login(client)
    assert speak("fr").endswith(">Territoires innovants en économie sociale")
    english = speak("en")
    assert english.endswith(">Innovative territories in the social economy") and 'lang="fr"' not in english
    in_db(settings, lambda s: s.add(_without_english(organization(settings, "tiess"))))
    assert speak("en") == '<p id="organization-description" lang="fr">Territoires innovants en économie sociale'


def _without_english(row: Organization) -> Organization:
    row.description_en = ""
    return row
