"""The register of confidentiality incidents: what the regulation asks for, validated."""

from __future__ import annotations

import dataclasses

import pytest

from portail.consent import incidents
from portail.consent.errors import ConsentError
from portail.db import Database

FORM = incidents.IncidentForm(
    title="Courriel envoyé au mauvais destinataire",
    occurred="2026-03-02, vers 14 h",
    discovered_on="2026-03-03",
    circumstances="Une liste de membres a été jointe par erreur.",
    information="Noms et adresses courriel",
    people_count="42",
    risk_assessment="Faible : destinataire de confiance, message supprimé.",
    serious_risk=False,
    measures="Destinataire a confirmé la suppression.",
    cai_notified_on="",
    people_notified_on="",
    public_notice="",
)


def test_an_incident_is_recorded_and_amended(db: Database) -> None:
    with db.session() as session:
        row = incidents.record(session, FORM, actor_id=None)
        reference = row.reference
    amended = dataclasses.replace(FORM, serious_risk=True, cai_notified_on="2026-03-04")
    with db.session() as session:
        row = incidents.amend(session, reference, amended, actor_id=None)
        assert row.cai_notified_on is not None and row.people_count == 42
        assert incidents.notification_missing(row)  # the people were not told yet
    with db.session() as session:
        [listed] = incidents.register(session)
        assert listed.reference == reference and listed.serious_risk


@pytest.mark.parametrize(
    "change",
    [
        {"title": ""},
        {"discovered_on": ""},
        {"discovered_on": "03/03/2026"},
        {"discovered_on": "2999-01-01"},
        {"people_count": "beaucoup"},
        {"people_count": "-3"},
        {"circumstances": " "},
        {"measures": "x" * 10_001},
    ],
)
def test_a_malformed_incident_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(ConsentError):
        incidents.parse(dataclasses.replace(FORM, **change))  # type: ignore[arg-type]


def test_an_unknown_incident_is_a_404(db: Database) -> None:
    with db.session() as session, pytest.raises(ConsentError) as caught:
        incidents.get(session, "nope")
    assert caught.value.status == 404
