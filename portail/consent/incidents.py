"""The register of confidentiality incidents, kept by the person in charge of personal information.

Law 25 (s. 3.8 of the private-sector act) requires every incident to be registered; the
Règlement sur les incidents de confidentialité (s. 11) lists what the register holds, which is
what ``IncidentForm`` asks for: a description of the personal information concerned, the
circumstances, the date or period of the incident, the date it was learned of, how many people
are concerned, the assessment of the risk of serious injury, the dates on which the Commission
d'accès à l'information and the people concerned were notified (when the risk is serious), any
public notice, and the measures taken to reduce the risk. Entries are kept at least five years.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.consent.errors import ConsentError
from portail.consent.models import ConfidentialityIncident
from portail.db import utcnow

TEXT_MAX = 10_000


@dataclass(frozen=True)
class IncidentForm:
    """What the officer typed; every field as text, validated by ``parse``."""

    title: str
    occurred: str
    discovered_on: str
    circumstances: str
    information: str
    people_count: str
    risk_assessment: str
    serious_risk: bool
    measures: str
    cai_notified_on: str
    people_notified_on: str
    public_notice: str


def _date(value: str, *, required: bool = False) -> dt.date | None:
    value = value.strip()
    if not value:
        if required:
            raise ConsentError("La date à laquelle l’incident a été connu est requise.")
        return None
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConsentError("Date invalide (AAAA-MM-JJ attendu) : %(value)s", value=value[:20]) from exc
    if parsed > utcnow().date() + dt.timedelta(days=1):
        raise ConsentError("Cette date est dans le futur : %(value)s", value=value)
    return parsed


def parse(form: IncidentForm) -> dict[str, object]:
    """Validate a form into column values; raises ``ConsentError`` naming the field."""
    title = form.title.strip()
    if not title or len(title) > 200:
        raise ConsentError("Le titre est requis (200 caractères au plus).")
    texts = {
        "circumstances": form.circumstances,
        "information": form.information,
        "risk_assessment": form.risk_assessment,
        "measures": form.measures,
        "public_notice": form.public_notice,
    }
    if any(len(value) > TEXT_MAX for value in texts.values()):
        raise ConsentError("Un des textes est trop long (%(max)s caractères au plus).", max=TEXT_MAX)
    if not form.circumstances.strip() or not form.information.strip():
        raise ConsentError("Décrivez ce qui s’est passé et les renseignements touchés.")
    count: int | None = None
    if form.people_count.strip():
        try:
            count = int(form.people_count.strip().replace(" ", ""))
        except ValueError as exc:
            raise ConsentError("Le nombre de personnes doit être un nombre entier.") from exc
        if not 0 <= count <= 10**9:  # an INTEGER column holds it on every database
            raise ConsentError("Le nombre de personnes doit être un nombre entier.")
    return {
        "title": title,
        "occurred": form.occurred.strip()[:100],
        "discovered_on": _date(form.discovered_on, required=True),
        "people_count": count,
        "serious_risk": form.serious_risk,
        "cai_notified_on": _date(form.cai_notified_on),
        "people_notified_on": _date(form.people_notified_on),
        **{name: value.strip() for name, value in texts.items()},
    }


def record(db: Session, form: IncidentForm, *, actor_id: int | None) -> ConfidentialityIncident:
    row = ConfidentialityIncident(**parse(form), recorded_by=actor_id)  # type: ignore[arg-type]
    db.add(row)
    db.flush()
    audit(db, "privacy.incident_recorded", actor_id=actor_id, subject_type="incident", subject_id=row.reference)
    return row


def amend(db: Session, reference: str, form: IncidentForm, *, actor_id: int | None) -> ConfidentialityIncident:
    row = get(db, reference)
    for name, value in parse(form).items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    db.add(row)
    audit(db, "privacy.incident_amended", actor_id=actor_id, subject_type="incident", subject_id=row.reference)
    return row


def get(db: Session, reference: str) -> ConfidentialityIncident:
    row = db.exec(select(ConfidentialityIncident).where(ConfidentialityIncident.reference == reference)).first()
    if row is None:
        raise ConsentError("Cet incident n’existe pas.", status=404)
    return row


def register(db: Session, *, limit: int = 500, offset: int = 0) -> list[ConfidentialityIncident]:
    """The register, most recently discovered first."""
    return list(
        db.exec(
            select(ConfidentialityIncident)
            .order_by(col(ConfidentialityIncident.discovered_on).desc(), col(ConfidentialityIncident.id).desc())
            .offset(offset)
            .limit(limit)
        )
    )


def notification_missing(row: ConfidentialityIncident) -> bool:
    """A serious-risk incident not yet reported to the Commission or to the people concerned."""
    return row.serious_risk and (row.cai_notified_on is None or row.people_notified_on is None)
