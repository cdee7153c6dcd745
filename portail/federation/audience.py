"""Who an instance serves and which instances a member sees.

An instance serves its own organization or territory (``Instance.organization_id``) plus every
organization or territory linked to it (``InstanceLink`` with status ``active``): an organization
admin asks for the link, the instance's hoster confirms it. A member belongs to the organizations of
their active memberships and to the territory of their profile (``Member.territory_id``).

- ``visible_instances(db, member)`` — the portal's tiles: every active central instance plus the
  active instances serving one of the member's organizations or territory. Suspended and retired
  instances never appear.
- ``groups_for(db, member, client_id)`` — the ``groups`` claim an instance receives: the slugs of the
  member's organizations relevant to that instance (all of them for a central instance or a client
  that is not an instance).
- ``members_only_refusal`` — an instance restricted to its organizations' members
  (``Instance.members_only``) is refused at ``/authorize`` to everyone else;
  ``restriction_groups`` gives the snippets the ``groups`` values to whitelist in the software.

The organization or territory a node was registered for serves it only once it accepted it
(``acceptance.py``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlmodel import Session, col, or_, select

from portail.accounts.members import audit
from portail.accounts.models import Member, Membership, Organization
from portail.config import Settings
from portail.db import utcnow
from portail.federation import notice_mail
from portail.federation.models import Hoster, Instance, InstanceLink
from portail.federation.rules import (
    Actor,
    FederationError,
    by_slug,
    forbidden,
    is_organization_admin,
    not_found,
    require_hoster,
    valid_slug,
)
from portail.oidc.models import OAuthClient
from portail.web import N_


def member_organization_ids(db: Session, member: Member) -> set[int]:
    ids = set(
        db.exec(
            select(Membership.organization_id).where(Membership.member_id == member.id, Membership.status == "active")
        )
    )
    if member.territory_id is not None:
        ids.add(member.territory_id)
    return ids


def served_organization_ids(db: Session, instance: Instance) -> set[int]:
    ids = set(
        db.exec(
            select(InstanceLink.organization_id).where(
                InstanceLink.instance_id == instance.id, InstanceLink.status == "active"
            )
        )
    )
    if instance.organization_id is not None:
        ids.add(instance.organization_id)
    return ids


def visible_instances(db: Session, member: Member) -> list[Instance]:
    """Active instances this member sees on the portal: central ones and those serving their organizations."""
    orgs = member_organization_ids(db, member)
    linked = select(InstanceLink.instance_id).where(
        col(InstanceLink.organization_id).in_(orgs), InstanceLink.status == "active"
    )
    query = select(Instance).where(
        Instance.status == "active",
        or_(
            Instance.scope == "central",
            col(Instance.organization_id).in_(orgs),
            col(Instance.id).in_(linked),
        ),
    )
    order = {"central": 0, "territorial": 1, "organization": 2}
    return sorted(db.exec(query), key=lambda i: (order.get(i.scope, 3), i.name.casefold()))


def instance_for_client(db: Session, client_id: str) -> Instance | None:
    return db.exec(select(Instance).where(Instance.client_id == client_id).order_by(col(Instance.id))).first()


def groups_for(db: Session, member: Member, client_id: str) -> list[str]:
    """The ``groups`` claim for the client ``client_id``: only the member's organizations relevant to
    that instance."""
    orgs = member_organization_ids(db, member)
    instance = instance_for_client(db, client_id)
    if instance is not None and instance.scope != "central":
        orgs &= served_organization_ids(db, instance)
    if not orgs:
        return []
    slugs = db.exec(select(Organization.slug).where(col(Organization.id).in_(orgs)))
    return sorted(slugs)


_instances: Any = Instance.__table__  # type: ignore[attr-defined]
_RULE_COLUMNS = (
    sa.select(_instances.c.members_only, _instances.c.scope)
    .where(_instances.c.client_id == bindparam("client_id"))
    .order_by(_instances.c.id)
    .limit(1)
)


def members_only_refusal(db: Session, member: Member, client: OAuthClient) -> str | None:
    """The OIDC access rule (``ProviderExtensions.add_access_rule``, run by ``prompts.refusal``): a
    members-only instance refuses a member who belongs to none of the organizations or territories it
    serves."""
    # Every /authorize runs this rule: first the two columns it decides on, in Core (an ORM entity
    # load costs several times the statement); the whole instance only for a members-only one.
    db.flush()  # as the ORM query autoflushed
    found = db.connection().execute(_RULE_COLUMNS, {"client_id": client.client_id}).first()
    if found is None or not found.members_only or found.scope == "central":
        return None
    instance = instance_for_client(db, client.client_id)
    if instance is None:
        return None
    if member_organization_ids(db, member) & served_organization_ids(db, instance):
        return None
    return N_(
        "Cet outil est réservé aux membres des organisations qu’il dessert. Demandez à l’organisation de "
        "vous ajouter à ses membres, ou retournez à votre portail pour ouvrir un autre outil."
    )


def restriction_groups(db: Session, instance: Instance) -> list[str]:
    """The ``groups`` values a members-only instance admits (for its software's own restriction)."""
    if not instance.members_only or instance.scope == "central":
        return []
    ids = served_organization_ids(db, instance)
    return sorted(db.exec(select(Organization.slug).where(col(Organization.id).in_(ids)))) if ids else []


# ---------------------------------------------------------------- links


def _organization(db: Session, slug: str) -> Organization:
    return by_slug(db, Organization, slug)


def request_link(
    db: Session, settings: Settings, actor: Actor, organization_slug: str, instance_slug: str
) -> InstanceLink:
    """An organization (or territory) admin asks to link an active instance; its hoster confirms."""
    organization = _organization(db, organization_slug)
    if not (actor.federation_admin or is_organization_admin(db, actor.member_id, organization.id or 0)):
        raise forbidden()
    instance = (
        db.exec(select(Instance).where(Instance.slug == instance_slug)).first() if valid_slug(instance_slug) else None
    )
    if instance is None or instance.status != "active":
        raise FederationError("Seule une instance active peut être liée.")
    if instance.organization_id == organization.id:
        raise FederationError("Cette instance dessert déjà %(organization)s.", organization=organization.name)
    link = db.exec(
        select(InstanceLink).where(
            InstanceLink.instance_id == instance.id, InstanceLink.organization_id == organization.id
        )
    ).first()
    if link is not None and link.status in ("requested", "active"):
        raise FederationError("Ce lien est déjà demandé ou actif.", status=409, code="conflict")
    link = link or InstanceLink(instance_id=instance.id or 0, organization_id=organization.id or 0)
    link.status, link.requested_by, link.created_at, link.decided_at = "requested", actor.member_id, utcnow(), None
    db.add(link)
    db.flush()
    audit(
        db,
        "instance.link_requested",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=instance.slug,
        reason=f"organization={organization.slug}",
        ip_address=actor.ip_address,
    )
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None:
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("Demande de lien : %(organization)s → %(instance)s"),
            N_(
                "%(organization)s demande à être desservi par votre instance %(instance)s. Confirmez ou "
                "refusez sur la page de l’instance."
            ),
            link=f"{settings.issuer}/federation/instances/{instance.slug}",
            organization=organization.name,
            instance=instance.name,
        )
    return link


def decide_link(db: Session, actor: Actor, link_id: int, *, accept: bool, reason: str = "") -> InstanceLink:
    """The instance's hoster confirms or refuses a link; either side may later remove it (``remove``)."""
    link = db.get(InstanceLink, link_id)
    if link is None:
        raise not_found()
    instance = db.get(Instance, link.instance_id)
    assert instance is not None
    require_hoster(db, actor, instance.hoster_id)
    if link.status != "requested":
        raise FederationError("Cette demande a déjà été traitée.", status=409, code="conflict")
    link.status, link.decided_at = ("active" if accept else "refused"), utcnow()
    db.add(link)
    audit(
        db,
        "instance.link_accepted" if accept else "instance.link_refused",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=instance.slug,
        reason=f"organization_id={link.organization_id} {reason}",
        ip_address=actor.ip_address,
    )
    return link


def remove_link(db: Session, actor: Actor, link_id: int) -> None:
    link = db.get(InstanceLink, link_id)
    if link is None:
        raise not_found()
    instance = db.get(Instance, link.instance_id)
    assert instance is not None
    hoster_side = actor.federation_admin or _runs(db, actor, instance)
    if not (hoster_side or is_organization_admin(db, actor.member_id, link.organization_id)):
        raise forbidden()
    link.status, link.decided_at = "removed", utcnow()
    db.add(link)
    audit(
        db,
        "instance.link_removed",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=instance.slug,
        reason=f"organization_id={link.organization_id}",
        ip_address=actor.ip_address,
    )


def _runs(db: Session, actor: Actor, instance: Instance) -> bool:
    try:
        require_hoster(db, actor, instance.hoster_id)
    except FederationError:
        return False
    return True


def links_of_instance(db: Session, instance_id: int) -> list[tuple[InstanceLink, Organization]]:
    rows = db.exec(
        select(InstanceLink, Organization)
        .join(Organization, Organization.id == InstanceLink.organization_id)  # type: ignore[arg-type]
        .where(InstanceLink.instance_id == instance_id, col(InstanceLink.status).in_(("requested", "active")))
        .order_by(col(Organization.name))
    ).all()
    return [(link, org) for link, org in rows]


def links_of_organization(db: Session, organization_id: int) -> list[tuple[InstanceLink, Instance]]:
    rows = db.exec(
        select(InstanceLink, Instance)
        .join(Instance, Instance.id == InstanceLink.instance_id)  # type: ignore[arg-type]
        .where(InstanceLink.organization_id == organization_id, col(InstanceLink.status).in_(("requested", "active")))
        .order_by(col(Instance.name))
    ).all()
    return [(link, inst) for link, inst in rows]


def administered_organizations(db: Session, member_id: int) -> list[Organization]:
    return list(
        db.exec(
            select(Organization)
            .join(Membership, Membership.organization_id == Organization.id)  # type: ignore[arg-type]
            .where(Membership.member_id == member_id, Membership.role == "admin", Membership.status == "active")
            .order_by(col(Organization.name))
        )
    )


def ask_hosting(
    db: Session, settings: Settings, actor: Actor, organization_slug: str, hoster_slug: str, software: str, message: str
) -> None:
    """An organization admin asks a hoster to host an instance for it (the hoster is mailed)."""
    organization = _organization(db, organization_slug)
    if not (actor.federation_admin or is_organization_admin(db, actor.member_id, organization.id or 0)):
        raise forbidden()
    query = select(Hoster).where(Hoster.slug == hoster_slug, Hoster.status == "active")
    hoster = db.exec(query).first() if valid_slug(hoster_slug) else None
    if hoster is None:
        raise FederationError("Choisissez un hébergeur de la fédération.")
    requester = db.get(Member, actor.member_id) if actor.member_id else None
    audit(
        db,
        "organization.hosting_requested",
        actor_id=actor.member_id,
        subject_type="organization",
        subject_id=organization.slug,
        reason=f"hoster={hoster.slug} software={software}",
        ip_address=actor.ip_address,
    )
    notice_mail.send(
        settings,
        notice_mail.hoster_recipients(db, settings, hoster),
        N_("Demande d’hébergement : %(organization)s"),
        N_(
            "%(organization)s vous demande d’héberger une instance %(software)s. "
            "Écrivez à %(email)s. Message : %(note)s"
        ),
        organization=organization.name,
        software=software,
        email=requester.email if requester else "",
        note=message[:1000],
    )
