"""The privacy officer's pages: the queue of requests and the register of incidents, for that role only."""

from __future__ import annotations

import re

from sqlmodel import Session
from starlette.testclient import TestClient

from portail.accounts.members import get_by_email
from portail.config import Settings
from portail.consent import deletion
from tests.conftest import create_member, db_call, login
from tests.integration.consent.forms import submit

INCIDENT = {
    "title": "Liste envoyée au mauvais destinataire",
    "occurred": "2026-03-02",
    "discovered_on": "2026-03-03",
    "circumstances": "Une pièce jointe erronée.",
    "information": "Noms et adresses courriel",
    "people_count": "42",
    "risk_assessment": "Faible",
    "measures": "Suppression confirmée par le destinataire.",
    "cai_notified_on": "",
    "people_notified_on": "",
    "public_notice": "",
}


def _officer(settings: Settings) -> None:
    create_member(settings, email="rp@example.org", name="Responsable")

    def grant(session: Session) -> None:
        member = get_by_email(session, "rp@example.org")
        assert member is not None
        member.roles = "privacy-officer"
        session.add(member)

    db_call(settings, grant)


def test_the_officer_pages_are_refused_to_other_members(client: TestClient, settings: Settings, member: object) -> None:
    login(client)
    for path in ("/privacy-officer", "/privacy-officer/incidents", "/privacy-officer/incidents/new"):
        assert client.get(path).status_code == 403


def test_the_officer_sees_deletion_and_access_requests(client: TestClient, settings: Settings, member: object) -> None:
    _officer(settings)

    def ask(session: Session) -> None:
        alice = get_by_email(session, "alice@example.org")
        assert alice is not None
        deletion.request_deletion(session, settings, alice.id or 0)

    db_call(settings, ask)
    login(client, "rp@example.org")
    page = client.get("/privacy-officer")
    assert page.status_code == 200 and "alice@example.org" in page.text and "suppression" in page.text


def test_the_officer_records_and_amends_an_incident(client: TestClient, settings: Settings) -> None:
    _officer(settings)
    login(client, "rp@example.org")
    created = submit(client, "/privacy-officer/incidents/new", "/privacy-officer/incidents/new", INCIDENT)
    assert created.status_code == 303
    register = client.get("/privacy-officer/incidents")
    assert "Liste envoyée au mauvais destinataire" in register.text
    [reference] = re.findall(r'href="/privacy-officer/incidents/([0-9a-f]{16})"', register.text)
    form = client.get(f"/privacy-officer/incidents/{reference}")
    assert "Noms et adresses courriel" in form.text and 'value="42"' in form.text
    amended = {**INCIDENT, "serious_risk": "on", "cai_notified_on": "2026-03-04"}
    path = f"/privacy-officer/incidents/{reference}"
    assert submit(client, path, path, amended).status_code == 303
    assert "avis à faire" in client.get("/privacy-officer/incidents").text  # people not notified yet


def test_a_malformed_incident_is_shown_again_with_the_error(client: TestClient, settings: Settings) -> None:
    _officer(settings)
    login(client, "rp@example.org")
    path = "/privacy-officer/incidents/new"
    response = submit(client, path, path, {**INCIDENT, "discovered_on": "hier"})
    assert (
        response.status_code == 400
        and "Date invalide" in response.text
        and "Une pièce jointe erronée." in response.text
    )
    assert client.get("/privacy-officer/incidents/inexistant").status_code == 404
