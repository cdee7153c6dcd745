"""The federation governing its hosters: suspension, reinstatement, exclusion, re-application after a
refusal, and acceptance of a new charter version.

- **Suspend** (``active → suspended``, reason required): every active node of the hoster is suspended
  through the same path as a single node's suspension (``provisioning.disable``: back-channel logout
  of every live session, client disabled, tokens revoked, members who used it told in their inbox),
  and marked as suspended *with its hoster* (``Instance.extra["with_hoster"]``).
- **Reinstate** (``suspended → active``): the nodes suspended with the hoster come back (not those the
  federation suspended on their own).
- **Exclude** (``active | suspended → excluded``, reason required): every node not yet retired is
  retired (its URL released). An excluded hoster cannot act again.
- The hoster's own API client is disabled (its tokens revoked) while it is suspended or excluded.
- Each time the hoster is mailed (its contact and administrators), and so are the administrators of
  every organization or territory its nodes served.
- **Re-apply**: a refused hoster's administrator applies again, accepting the current charter; the
  federation administrators are mailed and decide as for a first application.
- **Charter**: when ``federation_charter_version`` changes, each active hoster that accepted an older
  version gets ``charter_due_at = now + federation_charter_grace_days`` (mailed; shown on its page)
  and accepts the new version there; past the date it is suspended. The sweep runs with the prober.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.accounts.models import Organization
from portail.config import Settings
from portail.db import utcnow
from portail.federation import audience, hosters, notice_mail, provisioning
from portail.federation.models import Hoster, Instance
from portail.federation.rules import Actor, FederationError, require_federation_admin, require_hoster
from portail.oidc import clients, tokens
from portail.web import N_

ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "suspend": (("active",), "suspended"),
    "reinstate": (("suspended",), "active"),
    "exclude": (("active", "suspended"), "excluded"),
}
_MAIL = {
    "suspend": (
        N_("Hébergeur suspendu : %(hoster)s"),
        N_("La fédération suspend %(hoster)s. Ses nœuds sont suspendus : %(instances)s."),
    ),
    "reinstate": (
        N_("Hébergeur rétabli : %(hoster)s"),
        N_("La fédération rétablit %(hoster)s. Ses nœuds reviennent : %(instances)s."),
    ),
    "exclude": (
        N_("Hébergeur exclu : %(hoster)s"),
        N_("La fédération exclut %(hoster)s. Ses nœuds sont retirés : %(instances)s."),
    ),
}


def _nodes(db: Session, hoster: Hoster) -> list[Instance]:
    return list(db.exec(select(Instance).where(Instance.hoster_id == hoster.id, Instance.status != "retired")))


def _suspend_node(db: Session, settings: Settings, instance: Instance, reason: str) -> bool:
    if instance.status != "active":
        return False
    provisioning.disable(db, settings, instance, "suspend", reason)
    instance.status, instance.status_reason = "suspended", reason[:1000]
    instance.extra = {**instance.extra, "with_hoster": True}
    return True


def _reinstate_node(db: Session, instance: Instance) -> bool:
    if instance.status != "suspended" or not instance.extra.get("with_hoster"):
        return False
    provisioning.enable(db, instance)
    instance.status, instance.status_reason = "active", ""
    instance.extra = {k: v for k, v in instance.extra.items() if k != "with_hoster"}
    return True


def _retire_node(db: Session, settings: Settings, instance: Instance, reason: str) -> bool:
    if instance.status == "active":
        provisioning.disable(db, settings, instance, "retire", reason)
    instance.status, instance.status_reason = "retired", reason[:1000]
    instance.transfer_to_id = None
    return True


def govern(db: Session, settings: Settings, actor: Actor, slug: str, action: str, reason: str = "") -> Hoster:
    """Suspend, reinstate or exclude a hoster; its nodes follow (see the module docstring)."""
    require_federation_admin(actor)
    if action not in ACTIONS:
        raise FederationError("Décision inconnue.")
    hoster = hosters.get(db, slug)
    allowed, new_status = ACTIONS[action]
    if hoster.status not in allowed:
        raise FederationError(
            "Impossible depuis le statut « %(state)s ».", status=409, code="conflict", state=hoster.status
        )
    reason = reason.strip()
    if action != "reinstate" and not reason:
        raise FederationError("Une raison est obligatoire.")
    return _apply(db, settings, actor, hoster, action, new_status, reason)


def _apply(
    db: Session, settings: Settings, actor: Actor, hoster: Hoster, action: str, new_status: str, reason: str
) -> Hoster:
    now = utcnow()
    changed: list[Instance] = []
    for instance in _nodes(db, hoster):
        if action == "suspend":
            moved = _suspend_node(db, settings, instance, reason)
        elif action == "reinstate":
            moved = _reinstate_node(db, instance)
        else:
            moved = _retire_node(db, settings, instance, reason)
        if moved:
            instance.updated_at = now
            db.add(instance)
            changed.append(instance)
            audit(db, f"instance.{action}_with_hoster", actor_id=actor.member_id, subject_type="instance",
                  subject_id=instance.slug, reason=reason)  # fmt: skip
    _api_client(db, hoster, enabled=action == "reinstate", reason=reason)
    hoster.status, hoster.status_reason, hoster.decided_at = new_status, reason[:1000], now
    if action == "reinstate":
        hoster.charter_due_at = None  # still behind on the charter: the next sweep gives a fresh deadline
    db.add(hoster)
    audit(db, f"hoster.{new_status}", actor_id=actor.member_id, subject_type="hoster", subject_id=hoster.slug,
          reason=reason, ip_address=actor.ip_address)  # fmt: skip
    _tell(db, settings, hoster, action, reason, changed)
    return hoster


def _api_client(db: Session, hoster: Hoster, *, enabled: bool, reason: str) -> None:
    """The hoster's own API client follows it: disabled (tokens revoked) while suspended or excluded."""
    client = clients.get_client(db, hoster.client_id) if hoster.client_id else None
    if client is None:
        return
    if enabled:
        clients.enable_client(db, client)
    else:
        clients.disable_client(db, client)
        tokens.revoke_client_tokens(db, client.client_id, f"hoster withdrawn: {reason}"[:200])


def _tell(db: Session, settings: Settings, hoster: Hoster, action: str, reason: str, nodes: list[Instance]) -> None:
    subject, text = _MAIL[action]
    names = ", ".join(i.name for i in nodes) or "—"
    link = f"{settings.issuer}/federation/hosters/{hoster.slug}"
    recipients = notice_mail.hoster_recipients(db, settings, hoster)
    notice_mail.send(settings, recipients, subject, text, reason=reason, link=link, hoster=hoster.name, instances=names)
    served: dict[int, list[str]] = {}
    for instance in nodes:
        for organization_id in audience.served_organization_ids(db, instance):
            served.setdefault(organization_id, []).append(instance.name)
    for organization_id, names_there in served.items():
        organization = db.get(Organization, organization_id)
        if organization is None:
            continue
        notice_mail.send(
            settings,
            notice_mail.organization_admin_recipients(db, organization_id),
            subject,
            text,
            link=f"{settings.issuer}/federation/organizations/{organization.slug}",
            hoster=hoster.name,
            instances=", ".join(names_there),
        )


# ---------------------------------------------------------------- re-application and charter


def reapply(db: Session, settings: Settings, actor: Actor, slug: str, *, accept_charter: bool) -> Hoster:
    """A refused hoster's administrator applies again (accepting the current charter)."""
    hoster = hosters.get(db, slug)
    require_hoster(db, actor, hoster.id, admin=True)
    if hoster.status != "refused":
        raise FederationError("Seule une demande refusée peut être présentée de nouveau.", status=409, code="conflict")
    if not accept_charter:
        raise FederationError(
            "Vous devez accepter la charte de la fédération (version %(version)s).",
            version=settings.federation_charter_version,
        )
    hoster.status, hoster.status_reason = "applied", ""
    hoster.charter_version, hoster.charter_accepted_at = settings.federation_charter_version, utcnow()
    db.add(hoster)
    audit(db, "hoster.reapplied", actor_id=actor.member_id, subject_type="hoster", subject_id=slug,
          ip_address=actor.ip_address)  # fmt: skip
    notice_mail.send(
        settings,
        notice_mail.admin_recipients(db),
        N_("Nouvelle demande de %(hoster)s"),
        N_("%(hoster)s, refusé auparavant, présente une nouvelle demande."),
        link=f"{settings.issuer}/federation/admin",
        hoster=hoster.name,
    )
    return hoster


def accept_charter(db: Session, settings: Settings, actor: Actor, slug: str) -> Hoster:
    """A hoster's administrator accepts the current charter version."""
    hoster = hosters.get(db, slug)
    require_hoster(db, actor, hoster.id, admin=True)
    if hoster.status in ("refused", "excluded"):
        raise FederationError("Impossible depuis le statut « %(state)s ».", status=409, code="conflict",
                              state=hoster.status)  # fmt: skip
    if hoster.charter_version != settings.federation_charter_version:
        hoster.charter_version, hoster.charter_accepted_at = settings.federation_charter_version, utcnow()
        hoster.charter_due_at = None
        db.add(hoster)
        audit(db, "hoster.charter_accepted", actor_id=actor.member_id, subject_type="hoster", subject_id=slug,
              reason=hoster.charter_version, ip_address=actor.ip_address)  # fmt: skip
    return hoster


def charter_sweep(db: Session, settings: Settings) -> int:
    """Give each active hoster behind on the charter its deadline (mailed), and suspend those past it;
    returns how many hosters were suspended."""
    current = settings.federation_charter_version
    now = utcnow()
    behind = db.exec(
        select(Hoster).where(Hoster.status == "active", Hoster.charter_version != current).order_by(col(Hoster.id))
    ).all()
    suspended = 0
    for hoster in behind:
        if hoster.charter_due_at is None:
            hoster.charter_due_at = now + dt.timedelta(days=settings.federation_charter_grace_days)
            db.add(hoster)
            notice_mail.send(
                settings,
                notice_mail.hoster_recipients(db, settings, hoster),
                N_("Nouvelle charte à accepter : %(hoster)s"),
                N_(
                    "La charte de la fédération passe à la version %(version)s. Acceptez-la sur la page de "
                    "%(hoster)s avant le %(date)s, sinon l’hébergeur et ses nœuds seront suspendus."
                ),
                link=f"{settings.issuer}/federation/hosters/{hoster.slug}",
                hoster=hoster.name,
                version=current,
                date=hoster.charter_due_at.date().isoformat(),
            )
        elif hoster.charter_due_at <= now:
            reason = f"Charte {current} non acceptée / charter {current} not accepted"
            _apply(db, settings, Actor.cli(), hoster, "suspend", "suspended", reason)
            suspended += 1
    return suspended
