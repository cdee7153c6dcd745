"""What each federation page shows, gathered in one database call per page (with the permission
check): the member's federation home, a hoster's page, a node's page, an organization's page and
the federation administrators' desk; and the JSON shapes of instances for the API and the CLI."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from portail.accounts.models import AuditEvent, Member, Organization
from portail.federation import (
    audience,
    availability,
    chatons,
    hosters,
    nodes,
    proof,
    proof_recheck,
    residency,
    verification,
)
from portail.federation.models import INSTANCE_STATUSES, Hoster, Instance
from portail.federation.rules import (
    Actor,
    FederationError,
    can_run_hoster,
    forbidden,
    is_organization_admin,
    require_federation_admin,
    require_hoster,
    valid_slug,
)
from portail.oidc import clients


def home(db: Session, actor: Actor, member_id: int) -> dict[str, Any]:
    return {
        "my_hosters": hosters.of_member(db, member_id),
        "my_organizations": audience.administered_organizations(db, member_id),
        "is_federation_admin": actor.federation_admin,
    }


def hoster_page(db: Session, actor: Actor, slug: str) -> dict[str, Any]:
    hoster = hosters.get(db, slug)
    require_hoster(db, actor, hoster.id)
    return {
        "hoster": hoster,
        "people": hosters.people(db, hoster.id or 0),
        "instances": (own := nodes.list_instances(db, hoster_id=hoster.id)),
        "uptime": availability.uptime(db, [i.id or 0 for i in own]),
        "incoming": list(
            db.exec(
                select(Instance).where(Instance.transfer_to_id == hoster.id, Instance.status != "retired").limit(100)
            )
        ),
        "is_hoster_admin": can_run_hoster(db, actor, hoster.id, admin=True),
        "proof_alerts": proof_recheck.flagged(db, hoster_id=hoster.id),
    }


def node_form(db: Session, actor: Actor, slug: str) -> dict[str, Any]:
    hoster = hosters.get(db, slug)
    require_hoster(db, actor, hoster.id)
    if hoster.status != "active":
        raise FederationError("L’hébergeur doit être accepté par la fédération.", status=409, code="conflict")
    orgs = list(db.exec(select(Organization).order_by(col(Organization.name)).limit(1000)))
    return {
        "hoster": hoster,
        "organizations": [o for o in orgs if o.kind == "organization"],
        "territories": [o for o in orgs if o.kind == "territory"],
    }


def instance_page(db: Session, actor: Actor, slug: str) -> dict[str, Any]:
    instance = nodes.get_for(db, actor, slug)
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    client = clients.get_client(db, instance.client_id) if instance.client_id else None
    return {
        "instance": instance,
        "hoster": hoster,
        "organization": db.get(Organization, instance.organization_id) if instance.organization_id else None,
        "links": audience.links_of_instance(db, instance.id or 0),
        "transfer_to": db.get(Hoster, instance.transfer_to_id) if instance.transfer_to_id else None,
        "restriction_groups": audience.restriction_groups(db, instance),
        "claimed": db.get(Organization, instance.claimed_organization_id) if instance.claimed_organization_id else None,
        "client": client,
        "is_federation_admin": actor.federation_admin,
        "is_hoster_admin": can_run_hoster(db, actor, instance.hoster_id, admin=True),
        "view": public_view(db, instance, private=True),
    }


def organization_page(db: Session, actor: Actor, slug: str) -> dict[str, Any]:
    organization = db.exec(select(Organization).where(Organization.slug == slug)).first() if valid_slug(slug) else None
    if organization is None:
        raise forbidden()
    if not (actor.federation_admin or is_organization_admin(db, actor.member_id, organization.id or 0)):
        raise forbidden()
    own = list(
        db.exec(
            select(Instance).where(
                Instance.organization_id == organization.id, col(Instance.status).in_(("active", "suspended"))
            )
        )
    )
    links = audience.links_of_organization(db, organization.id or 0)
    claims = db.exec(
        select(Instance)
        .where(Instance.claimed_organization_id == organization.id, Instance.status != "retired")
        .where(col(Instance.organization_status).in_(("requested", "refused", "withdrawn")))
        .order_by(col(Instance.name))
        .limit(200)
    ).all()
    taken = {i.id for i in own} | {inst.id for _l, inst in links}
    available = [
        i
        for i in db.exec(select(Instance).where(Instance.status == "active").order_by(col(Instance.name)).limit(500))
        if i.id not in taken and i.scope != "central"
    ]
    return {
        "organization": organization,
        "own_instances": own,
        "claims": list(claims),
        "links": links,
        "available": available,
        "hosters": hosters.list_hosters(db, "active"),
    }


def decision_log_statement(limit: int = 50) -> Any:
    """The federation's latest decisions (audit events of category ``federation``) with their
    actor's name, newest first: read backwards on ``ix_audit_event_category_at``."""
    return (
        select(AuditEvent, Member.name)
        .join(Member, col(AuditEvent.actor_id) == Member.id, isouter=True)
        .where(AuditEvent.category == "federation")
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )


def admin_page(db: Session, actor: Actor) -> dict[str, Any]:
    require_federation_admin(actor)
    events = db.exec(decision_log_statement()).all()
    return {
        "applications": hosters.list_hosters(db, "applied"),
        "hosters": hosters.list_hosters(db),
        "awaiting": nodes.list_instances(db, status="awaiting-approval"),
        "instances": nodes.list_instances(db, limit=500),
        "events": [(e, name) for e, name in events],
        "proof_alerts": proof_recheck.flagged(db, escalated_only=True),
    }


# ---------------------------------------------------------------- JSON shapes (API, CLI)


def public_view(db: Session, instance: Instance, *, private: bool = False) -> dict[str, Any]:
    """The JSON shape of an instance (``private`` adds what only its hoster and administrators see)."""
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    organization = db.get(Organization, instance.organization_id) if instance.organization_id else None
    data: dict[str, Any] = {
        "slug": instance.slug,
        "name": instance.name,
        "software": instance.software,
        "base_url": instance.base_url,
        "scope": instance.scope,
        "status": instance.status,
        "hoster": hoster.slug if hoster else None,
        "organization": organization.slug if organization else None,
        "health": instance.health,
        "availability": availability.state(instance),
        "software_version": instance.software_version,
        "last_probe_at": instance.last_probe_at.isoformat() if instance.last_probe_at else None,
    }
    if private:
        data.update(
            status_reason=instance.status_reason,
            version=instance.updated_at.isoformat(),
            description=instance.description,
            description_en=instance.description_en,
            purposes=list(instance.purposes),
            purposes_en=list(instance.purposes_en),
            data_categories=list(instance.data_categories),
            data_categories_en=list(instance.data_categories_en),
            login_url=instance.login_url,
            nextcloud_provider_id=instance.extra.get("user_oidc_provider_id"),
            contact_email=instance.contact_email,
            client_id=instance.client_id,
            redirect_uris=list(instance.redirect_uris),
            post_logout_redirect_uris=list(instance.post_logout_redirect_uris),
            backchannel_logout_uri=instance.backchannel_logout_uri,
            provider_identifier=instance.provider_identifier,
            push_notifications=instance.push_notifications,
            secret_pending=bool(instance.extra.get("secret_pending")),
            **{name: getattr(instance, name) for name in (*chatons.SERVICE_FIELDS, *residency.FIELDS)},
            pia_recorded_at=instance.pia_recorded_at.isoformat() if instance.pia_recorded_at else None,
        )
        if instance.status == "awaiting-proof":
            data["challenge"] = {"token": instance.challenge, "url": verification.challenge_url(instance.base_url)}
        claimed = db.get(Organization, instance.claimed_organization_id) if instance.claimed_organization_id else None
        data["claimed_organization"] = claimed.slug if claimed else None
        data["organization_status"] = instance.organization_status or None
        data["members_only"] = instance.members_only
        data["jwks_uri"] = instance.extra.get("jwks_uri")
        data["proof"] = proof_recheck.view(instance)
        transfer_to = db.get(Hoster, instance.transfer_to_id) if instance.transfer_to_id else None
        data["transfer_to"] = transfer_to.slug if transfer_to else None
        move = instance.extra.get("move")
        if isinstance(move, dict):
            url = str(move.get("url", ""))
            token = str(move.get("challenge", ""))
            data["move"] = {
                "base_url": url,
                "token": token,
                "url": verification.challenge_url(url),
                "proof": proof.instructions(url, token),  # served over HTTP, or a TXT record of the new host
            }
    return data


def views_for(db: Session, actor: Actor, *, hoster_slug: str = "", status: str = "") -> list[dict[str, Any]]:
    """The instances ``actor`` manages (all of them for a federation administrator), as JSON shapes."""
    if hoster_slug:
        hoster = hosters.get(db, hoster_slug)
        require_hoster(db, actor, hoster.id)
        ids: list[int] | None = [hoster.id or 0]
    elif actor.federation_admin:
        ids = None
    elif actor.hoster_client is not None:
        ids = [actor.hoster_client]
    else:
        ids = [h.id or 0 for h, _role in hosters.of_member(db, actor.member_id or 0)]
    if status and status not in INSTANCE_STATUSES:
        raise FederationError("Statut inconnu.")
    query = select(Instance).order_by(col(Instance.name))
    if ids is not None:
        query = query.where(col(Instance.hoster_id).in_(ids))
    if status:
        query = query.where(Instance.status == status)
    return [public_view(db, i, private=True) for i in db.exec(query.limit(1000))]


def view_for(db: Session, actor: Actor, slug: str) -> dict[str, Any]:
    return public_view(db, nodes.get_for(db, actor, slug), private=True)
