"""Issue 12, plain French and plain English: a node's description, declared purposes and data
categories are edited in both languages through the JSON API (``PATCH /api/v1/federation/instances/{slug}``)
as on the node's page; English-speaking members see the English text, or the French one when there is none."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.federation.lifecycle import MAX_DECLARED, MAX_DESCRIPTION
from tests.federation_factories import in_db
from tests.integration.federation.test_api import P, call
from tests.integration.federation.test_hoster_flow import instance_row
from tests.integration.federation.test_node_lifecycle import active_node, hoster_and_admin
from tests.stub_server import StubServer

FRENCH = "Vos fichiers et agendas, hébergés au Québec."
ENGLISH = "Your files and calendars, hosted in Québec."


def _description(client: TestClient, settings: Settings, member: Member, slug: str, language: str) -> str:
    """The description on the node's page, for its hoster (``member``) reading in ``language``."""

    def speak(session: Session) -> None:
        row = session.get(Member, member.id)
        assert row is not None
        row.locale = language
        session.add(row)

    in_db(settings, speak)
    page = client.get(f"/federation/instances/{slug}")
    assert page.status_code == 200, page.text
    start = page.text.index('<p id="instance-description"')
    return page.text[start : page.text.index("</p>", start) + 4]


def test_the_api_edits_both_languages_and_english_speaking_members_see_the_english_text(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "nextcloud", stub_server)
    body = {
        "description": f"  {FRENCH} ",
        "description_en": ENGLISH,
        "purposes": ["Vous connecter", "  ", "Partager vos fichiers"],
        "purposes_en": ["Log you in", "Share your files"],
        "data_categories": ["identité", "courriel"],
        "data_categories_en": ["identity", "email"],
    }
    patched = call(client, "PATCH", f"{P}/instances/{slug}", alice, body)
    assert patched.status_code == 200, patched.text
    view = patched.json()
    assert set(view["changed"]) == set(body)
    assert view["description"] == FRENCH and view["description_en"] == ENGLISH
    assert view["purposes"] == ["Vous connecter", "Partager vos fichiers"]  # trimmed, blank items dropped
    assert view["purposes_en"] == ["Log you in", "Share your files"]
    assert view["data_categories_en"] == ["identity", "email"]
    assert call(client, "GET", f"{P}/instances/{slug}", alice).json()["description_en"] == ENGLISH
    row = instance_row(settings, slug)
    assert (row.description, row.description_en, row.data_categories) == (FRENCH, ENGLISH, ["identité", "courriel"])

    assert ENGLISH in _description(client, settings, member, slug, "en") and 'lang="fr"' not in _description(
        client, settings, member, slug, "en"
    )
    assert FRENCH in _description(client, settings, member, slug, "fr")

    # Keys left out stay as they are; null clears the English text and the French one is shown, marked as French.
    again = call(client, "PATCH", f"{P}/instances/{slug}", alice, {"description_en": None, "purposes_en": None})
    assert again.status_code == 200, again.text
    assert set(again.json()["changed"]) == {"description_en", "purposes_en"}
    assert again.json()["description"] == FRENCH and again.json()["purposes_en"] == []
    shown = _description(client, settings, member, slug, "en")
    assert FRENCH in shown and 'lang="fr"' in shown


def test_the_api_refuses_bad_descriptions_and_lists_with_its_json_errors(
    app: Any, client: TestClient, member: Member, settings: Settings, stub_server: StubServer
) -> None:
    alice, admin, hoster = hoster_and_admin(app, client, settings)
    slug = active_node(client, alice, admin, hoster, "matrix", stub_server)
    call(client, "PATCH", f"{P}/instances/{slug}", alice, {"description": FRENCH, "description_en": ENGLISH})
    refused = {
        "'description_en' must be a string.": {"description_en": 42},
        "'description' must be a string.": {"description": ["Clavardage"]},
        f"The English description has at most {MAX_DESCRIPTION} characters.": {
            "description_en": "x" * (MAX_DESCRIPTION + 1)
        },
        f"The description has at most {MAX_DESCRIPTION} characters.": {"description": "x" * (MAX_DESCRIPTION + 1)},
        "'purposes_en' must be a list of strings.": {"purposes_en": "Log you in"},
        "'data_categories_en' must be a list of strings.": {"data_categories_en": ["identity", 3]},
        f"At most {MAX_DECLARED} purposes or categories": {"purposes_en": ["Log you in"] * (MAX_DECLARED + 1)},
        "Unknown or read-only keys: description_fr.": {"description_fr": "Clavardage"},
    }
    for expected, body in refused.items():
        answer = call(client, "PATCH", f"{P}/instances/{slug}", alice, body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["error"] == "invalid_request"
        assert answer.json()["error_description"].startswith(expected), answer.json()
    row = instance_row(settings, slug)
    assert (row.description, row.description_en, row.purposes_en) == (FRENCH, ENGLISH, [])
