"""Organizations and territories as the federation records them: created and edited by federation
administrators (page ``/federation/admin/organizations`` and ``portail organizations
create|edit|list``), with a slug, a name, a kind (``organization`` or ``territory``), a Québec region
given by its code or its name, a locality (MRC, neighbourhood), a website and a contact address.

Who belongs to them (memberships, roles) stays with ``portail.accounts.organizations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.accounts.models import Organization
from portail.accounts.regions import REGIONS, code_for
from portail.federation.rules import (
    Actor,
    FederationError,
    by_slug,
    require_federation_admin,
    slugify,
    valid_slug,
)

KINDS = ("organization", "territory")


@dataclass
class OrganizationForm:
    """What a create or an edit says; ``None`` leaves a field as it is (edit)."""

    name: str | None = None
    kind: str | None = None
    region: str | None = None  # code (05) or name (Estrie); "" clears it
    locality: str | None = None
    website: str | None = None
    contact_email: str | None = None
    description: str | None = None
    description_en: str | None = None  # "" shows the French description to English-speaking members


def _apply(organization: Organization, form: OrganizationForm) -> None:
    if form.name is not None:
        name = " ".join(form.name.split())
        if not name or len(name) > 200:
            raise FederationError("Le nom est obligatoire (200 caractères au plus).")
        organization.name = name
    if form.kind is not None:
        if form.kind not in KINDS:
            raise FederationError("Le type est « organization » ou « territory ».")
        organization.kind = form.kind
    if form.region is not None:
        code = code_for(form.region) if form.region.strip() else None
        if form.region.strip() and code is None:
            raise FederationError("Région inconnue : %(region)s (code 01 à 17 ou nom).", region=form.region[:60])
        organization.region = code
    if form.locality is not None:
        organization.locality = " ".join(form.locality.split())[:200] or None
    if form.website is not None:
        website = form.website.strip()
        parts = urlsplit(website)
        if website and (parts.scheme not in ("https", "http") or not parts.hostname or len(website) > 500):
            raise FederationError("Le site Web doit être une adresse http(s) complète.")
        organization.website = website or None
    if form.contact_email is not None:
        contact = form.contact_email.strip()
        local, _at, domain = contact.partition("@")
        if contact and (not local or "." not in domain or len(contact) > 320 or any(c.isspace() for c in contact)):
            raise FederationError("L’adresse courriel de contact est invalide.")
        organization.contact_email = contact
    if form.description is not None:
        organization.description = form.description.strip()[:2000]
    if form.description_en is not None:
        organization.description_en = form.description_en.strip()[:2000]


def create(db: Session, actor: Actor, slug: str, form: OrganizationForm) -> Organization:
    require_federation_admin(actor)
    slug = slug.strip() or slugify(form.name or "", "organisation")
    if not valid_slug(slug):
        raise FederationError("Identifiant invalide : lettres minuscules, chiffres et tirets.")
    if db.exec(select(Organization.id).where(Organization.slug == slug)).first() is not None:
        raise FederationError("L’identifiant %(slug)s est déjà pris.", status=409, code="conflict", slug=slug)
    organization = Organization(slug=slug, name="", kind=form.kind or "organization")
    _apply(organization, OrganizationForm(**{**form.__dict__, "name": form.name or ""}))
    db.add(organization)
    db.flush()
    audit(db, "organization.created", actor_id=actor.member_id, subject_type="organization", subject_id=slug)
    return organization


def edit(db: Session, actor: Actor, slug: str, form: OrganizationForm) -> Organization:
    require_federation_admin(actor)
    organization = by_slug(db, Organization, slug)
    _apply(organization, form)
    db.add(organization)
    changed = ", ".join(k for k, v in form.__dict__.items() if v is not None)
    audit(
        db,
        "organization.edited",
        actor_id=actor.member_id,
        subject_type="organization",
        subject_id=slug,
        reason=changed,
    )
    return organization


def list_all(db: Session, kind: str = "", limit: int = 1000) -> list[Organization]:
    query = select(Organization).order_by(col(Organization.kind), col(Organization.name))
    if kind:
        query = query.where(Organization.kind == kind)
    return list(db.exec(query.limit(limit)))


def view(organization: Organization) -> dict[str, Any]:
    """The JSON shape (CLI ``--json``)."""
    return {
        "slug": organization.slug,
        "name": organization.name,
        "kind": organization.kind,
        "region": organization.region,
        "region_name": REGIONS.get(organization.region or ""),
        "locality": organization.locality,
        "website": organization.website,
        "contact_email": organization.contact_email,
    }
