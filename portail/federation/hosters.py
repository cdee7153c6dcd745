"""Hosters: the federation's member organizations that run nodes.

A person applies for a hoster (name, website, contact, region, acceptance of the current charter
version) and becomes its ``hoster-admin``; a federation administrator approves or refuses the
application with a reason that is mailed to the hoster; approval gives the hoster's people their
roles. A hoster admin manages the hoster's people and its ``client_credentials`` API client.
Every decision is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.accounts.members import AccountError, audit, get_by_email, normalize_email
from portail.accounts.models import Member
from portail.accounts.regions import REGIONS
from portail.config import Settings
from portail.db import utcnow
from portail.federation import notice_mail
from portail.federation.models import Hoster, HosterPerson
from portail.federation.rules import (
    HOSTER_ROLES,
    Actor,
    FederationError,
    by_slug,
    not_found,
    require_federation_admin,
    require_hoster,
    slugify,
    valid_slug,
)
from portail.oidc import clients
from portail.oidc.clients import ClientSpec
from portail.web import N_

API_SCOPES = "federation:read federation:write"


@dataclass
class Application:
    name: str
    contact_email: str
    website: str = ""
    description: str = ""
    region: str = ""
    accept_charter: bool = False
    slug: str = ""


def _check(application: Application, settings: Settings) -> tuple[str, str | None]:
    name = " ".join(application.name.split())
    if not name or len(name) > 200:
        raise FederationError("Le nom de l’hébergeur est obligatoire (200 caractères au plus).")
    try:
        contact = normalize_email(application.contact_email)
    except AccountError as exc:
        raise FederationError("L’adresse de contact est invalide.") from exc
    website = application.website.strip() or None
    if website:
        parts = urlsplit(website)
        if parts.scheme not in ("https", "http") or not parts.hostname or len(website) > 500:
            raise FederationError("Le site web doit être une adresse http(s) complète.")
    if application.region and application.region not in REGIONS:
        raise FederationError("Région administrative inconnue.")
    if len(application.description) > 5000:
        raise FederationError("La description est trop longue (5 000 caractères au plus).")
    if not application.accept_charter:
        raise FederationError(
            "Vous devez accepter la charte de la fédération (version %(version)s).",
            version=settings.federation_charter_version,
        )
    return contact, website


def apply(db: Session, settings: Settings, actor: Actor, application: Application) -> Hoster:
    """Record an application; the applying member becomes the hoster's ``hoster-admin``."""
    contact, website = _check(application, settings)
    slug = application.slug.strip() or slugify(application.name, "hebergeur")
    if not valid_slug(slug):
        raise FederationError("Identifiant invalide : lettres minuscules, chiffres et tirets.")
    if db.exec(select(Hoster.id).where(Hoster.slug == slug)).first() is not None:
        raise FederationError("Un hébergeur porte déjà l’identifiant %(slug)s.", slug=slug, code="conflict", status=409)
    now = utcnow()
    hoster = Hoster(
        slug=slug,
        name=" ".join(application.name.split()),
        website=website,
        contact_email=contact,
        description=application.description.strip(),
        region=application.region or None,
        charter_version=settings.federation_charter_version,
        charter_accepted_at=now,
        status="applied",
    )
    db.add(hoster)
    db.flush()
    if actor.member_id is not None:
        db.add(HosterPerson(hoster_id=hoster.id or 0, member_id=actor.member_id, role="hoster-admin"))
    audit(
        db,
        "hoster.applied",
        actor_id=actor.member_id,
        subject_type="hoster",
        subject_id=slug,
        reason=f"charter {settings.federation_charter_version}",
        ip_address=actor.ip_address,
    )
    notice_mail.send(
        settings,
        notice_mail.admin_recipients(db),
        N_("Nouvelle demande d’hébergeur : %(hoster)s"),
        N_("L’hébergeur %(hoster)s demande à rejoindre la fédération."),
        link=f"{settings.issuer}/federation/admin",
        hoster=hoster.name,
    )
    return hoster


def get(db: Session, slug: str) -> Hoster:
    return by_slug(db, Hoster, slug)


def list_hosters(db: Session, status: str | None = None, *, offset: int = 0, limit: int = 200) -> list[Hoster]:
    query = select(Hoster).order_by(col(Hoster.name))
    if status:
        query = query.where(Hoster.status == status)
    return list(db.exec(query.offset(offset).limit(limit)))


def of_member(db: Session, member_id: int) -> list[tuple[Hoster, str]]:
    """The hosters a member belongs to, with their role."""
    rows = db.exec(
        select(Hoster, HosterPerson.role)
        .join(HosterPerson, HosterPerson.hoster_id == Hoster.id)  # type: ignore[arg-type]
        .where(HosterPerson.member_id == member_id)
        .order_by(col(Hoster.name))
    ).all()
    return [(h, r) for h, r in rows]


def people(db: Session, hoster_id: int) -> list[tuple[Member, str]]:
    rows = db.exec(
        select(Member, HosterPerson.role)
        .join(HosterPerson, HosterPerson.member_id == Member.id)  # type: ignore[arg-type]
        .where(HosterPerson.hoster_id == hoster_id)
        .order_by(col(Member.name))
    ).all()
    return [(m, r) for m, r in rows]


def decide(db: Session, settings: Settings, actor: Actor, slug: str, *, approve: bool, reason: str = "") -> Hoster:
    """Approve or refuse an application (a refusal needs a reason); the hoster is told by mail."""
    require_federation_admin(actor)
    hoster = get(db, slug)
    reason = reason.strip()
    allowed = ("applied", "refused") if approve else ("applied",)  # a suspended hoster is reinstated (governance)
    if hoster.status not in allowed:
        raise FederationError("Cette demande a déjà été traitée.", status=409, code="conflict")
    if not approve and not reason:
        raise FederationError("Une raison est obligatoire pour refuser.")
    hoster.status = "active" if approve else "refused"
    hoster.status_reason = reason[:1000]
    hoster.decided_at = utcnow()
    db.add(hoster)
    audit(
        db,
        "hoster.approved" if approve else "hoster.refused",
        actor_id=actor.member_id,
        subject_type="hoster",
        subject_id=hoster.slug,
        reason=reason,
        ip_address=actor.ip_address,
    )
    if approve:
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("Votre demande d’hébergeur est acceptée : %(hoster)s"),
            N_("La fédération a accepté %(hoster)s. Vous pouvez maintenant inscrire vos nœuds."),
            reason=reason,
            link=f"{settings.issuer}/federation/hosters/{hoster.slug}",
            hoster=hoster.name,
        )
    else:
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("Votre demande d’hébergeur est refusée : %(hoster)s"),
            N_("La fédération a refusé la demande de %(hoster)s."),
            reason=reason,
            hoster=hoster.name,
        )
    return hoster


def add_person(db: Session, actor: Actor, slug: str, email: str, role: str) -> Member:
    """A hoster admin gives an existing member a role in the hoster (or changes it)."""
    hoster = get(db, slug)
    require_hoster(db, actor, hoster.id, admin=True)
    if role not in HOSTER_ROLES:
        raise FederationError("Rôle inconnu.")
    member = get_by_email(db, email) if email.isprintable() else None
    if member is None:
        raise FederationError("Aucun compte n’existe avec cette adresse ; la personne doit d’abord créer son compte.")
    person = db.exec(
        select(HosterPerson).where(HosterPerson.hoster_id == hoster.id, HosterPerson.member_id == member.id)
    ).first()
    if person is None:
        person = HosterPerson(hoster_id=hoster.id or 0, member_id=member.id or 0, role=role)
    person.role = role
    db.add(person)
    audit(
        db,
        "hoster.person_set",
        actor_id=actor.member_id,
        member_id=member.id,
        subject_type="hoster",
        subject_id=hoster.slug,
        reason=role,
        ip_address=actor.ip_address,
    )
    return member


def remove_person(db: Session, actor: Actor, slug: str, member_id: int) -> None:
    hoster = get(db, slug)
    require_hoster(db, actor, hoster.id, admin=True)
    person = db.exec(
        select(HosterPerson).where(HosterPerson.hoster_id == hoster.id, HosterPerson.member_id == member_id)
    ).first()
    if person is None:
        raise not_found()
    admins = [
        p
        for p in db.exec(
            select(HosterPerson).where(HosterPerson.hoster_id == hoster.id, HosterPerson.role == "hoster-admin")
        )
    ]
    if person.role == "hoster-admin" and len(admins) == 1:
        raise FederationError("Un hébergeur garde au moins un administrateur.")
    db.delete(person)
    audit(
        db,
        "hoster.person_removed",
        actor_id=actor.member_id,
        member_id=member_id,
        subject_type="hoster",
        subject_id=hoster.slug,
        ip_address=actor.ip_address,
    )


def issue_api_client(db: Session, actor: Actor, slug: str) -> tuple[str, str]:
    """Create (or re-key) the hoster's ``client_credentials`` client; returns its id and secret, shown once."""
    hoster = get(db, slug)
    require_hoster(db, actor, hoster.id, admin=True)
    if hoster.status != "active":
        raise FederationError("L’hébergeur doit être accepté par la fédération.", status=409, code="conflict")
    client = clients.get_client(db, hoster.client_id) if hoster.client_id else None
    if client is None:
        spec = ClientSpec(
            name=f"API — {hoster.name}",
            client_id=f"hoster-{hoster.slug}",
            grant_types=["client_credentials"],
            scope=API_SCOPES,
            subject_type="public",
        )
        client, secret = clients.create_client(db, spec)
        assert secret is not None
        hoster.client_id = client.client_id
        db.add(hoster)
    else:
        secret = clients.rotate_secret(db, client)
        clients.enable_client(db, client)
    audit(
        db,
        "hoster.api_client_issued",
        actor_id=actor.member_id,
        subject_type="hoster",
        subject_id=hoster.slug,
        ip_address=actor.ip_address,
    )
    return client.client_id, secret


def by_client_id(db: Session, client_id: str) -> Hoster | None:
    return db.exec(select(Hoster).where(Hoster.client_id == client_id)).first()


def view_for(db: Session, actor: Actor, slug: str) -> dict[str, object]:
    """The JSON shape of a hoster, for its people and federation administrators."""
    hoster = get(db, slug)
    require_hoster(db, actor, hoster.id)
    return {
        "slug": hoster.slug,
        "name": hoster.name,
        "status": hoster.status,
        "status_reason": hoster.status_reason,
        "website": hoster.website,
        "contact_email": hoster.contact_email,
        "region": hoster.region,
        "charter_version": hoster.charter_version,
        "charter_due_at": hoster.charter_due_at.isoformat() if hoster.charter_due_at else None,
        "client_id": hoster.client_id,
        "people": [{"name": m.name, "email": m.email, "role": r} for m, r in people(db, hoster.id or 0)],
        # the CHATONS organization data the hoster edits (chatons.ORGANIZATION_FIELDS)
        "organization_type": hoster.organization_type,
        "description": hoster.description,
        "legal_url": hoster.legal_url,
        "terms_url": hoster.terms_url,
        "logo_url": hoster.logo_url,
        "start_date": hoster.start_date.isoformat() if hoster.start_date else None,
    }
