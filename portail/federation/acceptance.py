"""An organization or territory decides which hosted nodes serve its members.

A hoster registering a node names the organization or territory it serves: that is a *claim*
(``Instance.claimed_organization_id``, ``organization_status = "requested"``), mailed to the
organization's administrators (to the federation's when it has none). Until they accept, the node
serves no one there: no tile, no menu entry, no ``groups`` recipient (``Instance.organization_id``,
which every "who sees what" query reads, stays empty). A claim made by one of the organization's
own administrators is accepted at once.

The administrators accept or refuse a pending claim (once: a second answer, or an answer about a
retired node, is refused), and may later withdraw an acceptance: the node stops serving their
members at once. The hoster is mailed each time, and each step is in the audit log.

``organization_status``: ``"" → requested → accepted | refused``; ``accepted → withdrawn``.
"""

from __future__ import annotations

from sqlmodel import Session

from portail.accounts.members import audit
from portail.accounts.models import Organization
from portail.config import Settings
from portail.db import utcnow
from portail.federation import notice_mail
from portail.federation.models import Hoster, Instance
from portail.federation.rules import Actor, FederationError, by_slug, forbidden, is_organization_admin
from portail.web import N_

DECISIONS = {
    "accept": ("requested", "accepted"),
    "refuse": ("requested", "refused"),
    "withdraw": ("accepted", "withdrawn"),
}


def claim(db: Session, settings: Settings, actor: Actor, instance: Instance, organization: Organization) -> None:
    """Record that ``instance`` claims to serve ``organization`` (called at registration)."""
    instance.claimed_organization_id = organization.id
    if is_organization_admin(db, actor.member_id, organization.id or 0):
        instance.organization_id, instance.organization_status = organization.id, "accepted"
        return
    instance.organization_id, instance.organization_status = None, "requested"
    notice_mail.send(
        settings,
        notice_mail.organization_admin_recipients(db, organization.id or 0),
        N_("Un nœud dit desservir %(organization)s"),
        N_(
            "Le nœud %(instance)s (%(url)s) dit desservir %(organization)s. Il n’apparaîtra à vos membres "
            "que si vous l’acceptez."
        ),
        link=f"{settings.issuer}/federation/organizations/{organization.slug}",
        instance=instance.name,
        url=instance.base_url,
        organization=organization.name,
    )


_MAIL = {
    "accept": (
        N_("Nœud accepté par %(organization)s : %(instance)s"),
        N_("%(organization)s accepte que le nœud %(instance)s desserve ses membres."),
    ),
    "refuse": (
        N_("Nœud refusé par %(organization)s : %(instance)s"),
        N_("%(organization)s refuse que le nœud %(instance)s desserve ses membres."),
    ),
    "withdraw": (
        N_("%(organization)s retire son acceptation : %(instance)s"),
        N_("%(organization)s retire son acceptation : le nœud %(instance)s ne dessert plus ses membres."),
    ),
}


def decide(db: Session, settings: Settings, actor: Actor, slug: str, decision: str, reason: str = "") -> Instance:
    """The claimed organization's administrators (or the federation) accept, refuse or withdraw."""
    if decision not in DECISIONS:
        raise FederationError("Décision inconnue.")
    instance = by_slug(db, Instance, slug)
    organization = db.get(Organization, instance.claimed_organization_id) if instance.claimed_organization_id else None
    if organization is None:
        raise FederationError("Ce nœud ne dit desservir aucune organisation.", status=409, code="conflict")
    if not (actor.federation_admin or is_organization_admin(db, actor.member_id, organization.id or 0)):
        raise forbidden()
    if instance.status == "retired":
        raise FederationError("Ce nœud est retiré.", status=409, code="conflict")
    expected, new_status = DECISIONS[decision]
    if instance.organization_status != expected:
        raise FederationError(
            "Déjà décidé (%(state)s).", status=409, code="conflict", state=instance.organization_status or "—"
        )
    instance.organization_status = new_status
    instance.organization_id = organization.id if decision == "accept" else None
    instance.updated_at = utcnow()
    db.add(instance)
    audit(
        db,
        f"instance.organization_{new_status}",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason=f"{organization.slug}: {reason}"[:500],
        ip_address=actor.ip_address,
    )
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None:
        subject, text = _MAIL[decision]
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            subject,
            text,
            reason=reason,
            link=f"{settings.issuer}/federation/instances/{slug}",
            instance=instance.name,
            organization=organization.name,
        )
    return instance
