"""Nodes (instances) of the federation: registration by a hoster, proof of control of the domain,
approval by a federation administrator, and their life afterwards.

States (``Instance.status``)::

    awaiting-proof --verify (challenge served)--> awaiting-approval --approve--> active
          |                                              |                        |   ^
          +------------- refuse / retire ----------------+               suspend |   | reactivate
                                                                                  v   |
    retired <------------------------- retire ----------------------------- suspended
    retired --reactivate (federation)--> active (awaiting-proof when it was never approved)
    awaiting-proof --(no proof within federation_unproven_days)--> retired ("expired")

A hoster registers a node (software, name, base URL, scope, organization or territory served);
Portail issues a challenge that the hoster serves at ``{base_url}/.well-known/portail-challenge``;
"verify" fetches it through the SSRF guard. A base URL is compared on its normalized origin and held
only by a live node (``lifecycle``: expiry, release, editing). Approval provisions the OIDC client (its secret is never
shown to the approver: the hoster reveals it once, with the configuration, on the node's page — which
re-keys the client). Suspension and retirement disable the client and revoke its tokens. Every step
and every refusal is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.accounts.models import Organization
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation import (
    acceptance,
    hosters,
    lifecycle,
    notice_mail,
    proof,
    provisioning,
    residency,
    verification,
)
from portail.federation.models import INSTANCE_STATUSES, SCOPES, SOFTWARE, Hoster, Instance
from portail.federation.rules import (
    Actor,
    FederationError,
    by_slug,
    require_federation_admin,
    require_hoster,
    slugify,
    valid_slug,
)
from portail.federation.verification import Refused
from portail.web import N_

SCOPE_KIND = {"organization": "organization", "territorial": "territory"}
# action -> (statuses it applies to, new status, audit action)
DECISIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "approve": (("awaiting-approval",), "active", "instance.approved"),
    "refuse": (("awaiting-proof", "awaiting-approval"), "retired", "instance.refused"),
    "suspend": (("active",), "suspended", "instance.suspended"),
    "reactivate": (("suspended", "retired"), "active", "instance.reactivated"),
    "retire": (("awaiting-proof", "awaiting-approval", "active", "suspended"), "retired", "instance.retired"),
}
NEEDS_REASON = ("refuse", "suspend", "retire")


@dataclass
class NodeForm:
    software: str
    name: str
    base_url: str
    scope: str = "organization"
    organization: str = ""  # slug of the organization or territory served
    provider_identifier: str = "encommun"
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str = ""
    slug: str = ""
    push_notifications: bool | str | None = None  # None or "": the software's default
    jwks_uri: str = ""  # given: the client authenticates with private_key_jwt (keys fetched there)


def normalize_base_url(raw: str, settings: Settings) -> str:
    """``scheme://host[:port][/path]`` without trailing slash, query or fragment; raises ``Refused``."""
    url = raw.strip()
    verification.check_syntax(url, settings)
    parts = urlsplit(url)
    if parts.query:
        raise Refused("query", "L’adresse de base ne doit pas contenir de paramètres (?…).")
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def _refusal(db: Session, refused: Refused, url: str, actor: Actor, subject_type: str, subject_id: str) -> None:
    verification.audit_refusal(
        db, refused, url, actor_id=actor.member_id, subject_type=subject_type, subject_id=subject_id
    )


def _as_error(refused: Refused, code: str = "invalid_url", status: int = 400) -> FederationError:
    return FederationError(refused.message, code=code, status=status, **refused.params)


async def register(db: Database, settings: Settings, actor: Actor, hoster_slug: str, form: NodeForm) -> Instance:
    """Register a node for a hoster; returns it in ``awaiting-proof`` with its challenge."""
    try:
        base = normalize_base_url(form.base_url, settings)
        await verification.check_url(base, settings)
    except Refused as exc:
        if exc.code != "dns":  # a name not yet in the DNS is checked again at verification
            await db.run(_refusal, exc, form.base_url, actor, "hoster", hoster_slug)
            raise _as_error(exc) from exc
    try:
        return await db.run(_create, settings, actor, hoster_slug, form, base)
    except FederationError as exc:
        if exc.status != 403:  # refused input (duplicate, bad URIs…) is recorded; intruders are not logged here
            await db.run(_registration_refused, exc, actor, hoster_slug, base)
        raise


def _registration_refused(db: Session, exc: FederationError, actor: Actor, hoster_slug: str, base: str) -> None:
    audit(
        db,
        "instance.registration_refused",
        actor_id=actor.member_id,
        subject_type="hoster",
        subject_id=hoster_slug[:80],
        reason=f"{base[:300]}: {exc}",
        ip_address=actor.ip_address,
    )


def _unique_slug(db: Session, wanted: str) -> str:
    slug, n = wanted, 1
    while db.exec(select(Instance.id).where(Instance.slug == slug)).first() is not None:
        n += 1
        slug = f"{wanted[:70]}-{n}"
    return slug


def _served_organization(db: Session, actor: Actor, scope: str, organization: str) -> Organization | None:
    if scope not in SCOPES:
        raise FederationError("Portée inconnue.")
    if scope == "central":
        if not actor.federation_admin:
            raise FederationError("Seule la fédération déclare des instances centrales.", status=403, code="forbidden")
        return None
    slug = organization.strip()
    found = db.exec(select(Organization).where(Organization.slug == slug)).first() if valid_slug(slug) else None
    if found is None or found.kind != SCOPE_KIND[scope]:
        if scope == "territorial":
            raise FederationError("Choisissez le territoire desservi.")
        raise FederationError("Choisissez l’organisation desservie.")
    return found


def _create(db: Session, settings: Settings, actor: Actor, hoster_slug: str, form: NodeForm, base: str) -> Instance:
    hoster = hosters.get(db, hoster_slug)
    require_hoster(db, actor, hoster.id)
    if hoster.status != "active":
        raise FederationError("L’hébergeur doit être accepté par la fédération.", status=409, code="conflict")
    if form.software not in SOFTWARE:
        raise FederationError("Logiciel inconnu.")
    name = " ".join(form.name.split())
    if not name or len(name) > 200:
        raise FederationError("Le nom est obligatoire (200 caractères au plus).")
    served = _served_organization(db, actor, form.scope, form.organization)
    key = lifecycle.key_of(base)
    lifecycle.ensure_free(db, settings, key)
    uris = provisioning.derive(
        form.software,
        base,
        provider_identifier=form.provider_identifier,
        redirect_uris=form.redirect_uris,
        post_logout_redirect_uris=form.post_logout_redirect_uris,
        backchannel_logout_uri=form.backchannel_logout_uri.strip() or None,
    )
    slug = form.slug.strip() or slugify(name)
    if not valid_slug(slug):
        raise FederationError("Identifiant invalide : lettres minuscules, chiffres et tirets.")
    instance = Instance(
        slug=_unique_slug(db, slug),
        name=name,
        software=form.software,
        base_url=base,
        origin_key=key,
        hoster_id=hoster.id,
        scope=form.scope,
        status="awaiting-proof",
        source="registry",
        provider_identifier=provisioning.check_provider_identifier(form.provider_identifier),
        push_notifications=provisioning.push_setting(form.push_notifications, form.software),
        redirect_uris=uris.redirect_uris,
        post_logout_redirect_uris=uris.post_logout_redirect_uris,
        backchannel_logout_uri=uris.backchannel_logout_uri,
        challenge=verification.new_challenge(),
        challenge_issued_at=utcnow(),
    )
    jwks_uri = lifecycle.checked_jwks_uri(form.jwks_uri, base)
    if jwks_uri:
        instance.extra = {**instance.extra, "jwks_uri": jwks_uri}
    if served is not None:
        acceptance.claim(db, settings, actor, instance, served)
    db.add(instance)
    db.flush()
    audit(
        db,
        "instance.registered",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=instance.slug,
        reason=f"{instance.software} {base} hoster={hoster.slug}",
        ip_address=actor.ip_address,
    )
    return instance


def get(db: Session, slug: str) -> Instance:
    return by_slug(db, Instance, slug)


def get_for(db: Session, actor: Actor, slug: str) -> Instance:
    """An instance its hoster's people (or a federation administrator) may manage."""
    instance = get(db, slug)
    require_hoster(db, actor, instance.hoster_id)
    return instance


def list_instances(
    db: Session, *, hoster_id: int | None = None, status: str | None = None, offset: int = 0, limit: int = 200
) -> list[Instance]:
    query = select(Instance).order_by(col(Instance.name))
    if hoster_id is not None:
        query = query.where(Instance.hoster_id == hoster_id)
    if status:
        if status not in INSTANCE_STATUSES:
            raise FederationError("Statut inconnu.")
        query = query.where(Instance.status == status)
    return list(db.exec(query.offset(offset).limit(limit)))


async def verify(db: Database, settings: Settings, actor: Actor, slug: str, method: str = "http") -> Instance:
    """Check the node's proof of control (``method``: the challenge served over HTTP, or the DNS TXT
    record, ``proof.py``); on success the node awaits the federation's approval."""
    method = proof.method_of(method)
    instance = await db.run(get_for, actor, slug)
    if instance.status != "awaiting-proof":
        raise FederationError(
            "Ce nœud n’attend pas de vérification (statut : %(state)s).",
            status=409,
            code="conflict",
            state=instance.status,
        )
    try:
        await proof.check(settings, method, instance.base_url, instance.challenge or "")
    except Refused as exc:
        await db.run(_refusal, exc, proof.where(method, instance.base_url), actor, "instance", slug)
        raise _as_error(exc, "verification_failed", 422) from exc
    return await db.run(_verified, settings, actor, slug, method)


def _verified(db: Session, settings: Settings, actor: Actor, slug: str, method: str = "http") -> Instance:
    instance = get(db, slug)
    if instance.status != "awaiting-proof":
        return instance
    instance.status = "awaiting-approval"
    now = utcnow()
    instance.verified_at = instance.updated_at = instance.proof_ok_at = instance.proof_checked_at = now
    instance.proof_method, instance.proof_lost_at, instance.proof_escalated_at = method, None, None
    instance.proof_due_at = now + dt.timedelta(hours=settings.proof_recheck_hours)
    instance.proof_failure = None
    db.add(instance)
    audit(
        db,
        "instance.verified",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason=f"proof: {method}",
        ip_address=actor.ip_address,
    )
    notice_mail.send(
        settings,
        notice_mail.admin_recipients(db),
        N_("Nœud à approuver : %(instance)s"),
        N_("Le nœud %(instance)s (%(url)s) a prouvé son domaine et attend votre approbation."),
        link=f"{settings.issuer}/federation/admin",
        instance=instance.name,
        url=instance.base_url,
    )
    return instance


_DECISION_MAIL = {
    "approve": (
        N_("Nœud approuvé : %(instance)s"),
        N_("Le nœud %(instance)s est approuvé. Obtenez son secret et sa configuration sur sa page."),
    ),
    "refuse": (N_("Nœud refusé : %(instance)s"), N_("La fédération a refusé le nœud %(instance)s.")),
    "suspend": (
        N_("Nœud suspendu : %(instance)s"),
        N_("Le nœud %(instance)s est suspendu : les connexions par Portail y sont refusées."),
    ),
    "reactivate": (N_("Nœud réactivé : %(instance)s"), N_("Le nœud %(instance)s est de nouveau actif.")),
    "retire": (N_("Nœud retiré : %(instance)s"), N_("Le nœud %(instance)s est retiré de la fédération.")),
}


def decide(db: Session, settings: Settings, actor: Actor, slug: str, action: str, reason: str = "") -> Instance:
    """A federation decision on a node (a hoster may also retire its own node)."""
    if action not in DECISIONS:
        raise FederationError("Décision inconnue.")
    instance = get(db, slug)
    if action == "retire" and not actor.federation_admin:
        require_hoster(db, actor, instance.hoster_id, admin=True)
    else:
        require_federation_admin(actor)
    allowed, new_status, audit_action = DECISIONS[action]
    if instance.status not in allowed:
        raise FederationError(
            "Impossible depuis le statut « %(state)s ».", status=409, code="conflict", state=instance.status
        )
    reason = reason.strip()
    if action in NEEDS_REASON and not reason:
        raise FederationError("Une raison est obligatoire.")
    now = utcnow()
    if action == "approve":
        residency.require_pia(instance)  # Law 25: data leaving Québec need a recorded PIA first
        provisioning.provision(db, settings, instance, administrator=instance.source == "file")
        instance.approved_at, instance.approved_by = now, actor.member_id
        instance.extra = {**instance.extra, "secret_pending": True}
    elif action == "reactivate":
        new_status = _reactivate(db, settings, instance)
    elif action in ("suspend", "retire"):
        provisioning.disable(db, settings, instance, action, reason)
    instance.status, instance.status_reason, instance.updated_at = new_status, reason[:1000], now
    db.add(instance)
    audit(
        db,
        audit_action,
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason=reason,
        ip_address=actor.ip_address,
    )
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None:
        subject, message = _DECISION_MAIL[action]
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            subject,
            message,
            reason=reason,
            link=f"{settings.issuer}/federation/instances/{slug}",
            instance=instance.name,
        )
    return instance


def _reactivate(db: Session, settings: Settings, instance: Instance) -> str:
    """Bring a suspended or retired node back; returns its new status. A retired node takes its URL
    back only when no live node holds it; one that was never approved proves its domain again."""
    if instance.status == "retired":
        key = instance.origin_key or lifecycle.key_of(instance.base_url)
        lifecycle.ensure_free(db, settings, key, exclude_id=instance.id)
        if instance.approved_at is None:
            instance.challenge, instance.challenge_issued_at = verification.new_challenge(), utcnow()
            instance.verified_at = None
            return "awaiting-proof"
    provisioning.enable(db, instance)
    return "active"


def reveal_secret(
    db: Session, settings: Settings, actor: Actor, slug: str, *, revoke_now: bool = False, seen: str | None = None
) -> tuple[Instance, str, str]:
    """Give a hoster administrator a new client secret, shown once. The first one is issued after
    approval; a rotation keeps the previous secret working for ``secret_rotation_grace_hours`` unless
    ``revoke_now``. ``seen`` is the rotation date the form was drawn with (``""`` for none): a second
    submission of the same form finds it changed and rotates nothing."""
    instance = get(db, slug)
    require_hoster(db, actor, instance.hoster_id, admin=True)
    if instance.status != "active":
        raise FederationError("Le nœud doit être actif.", status=409, code="conflict")
    if provisioning.client_of(db, instance) is None:
        provisioning.provision(db, settings, instance)
    client = provisioning.client_of(db, instance)
    current = client.secret_rotated_at.isoformat() if client and client.secret_rotated_at else ""
    if seen is not None and seen != current:
        raise FederationError(
            "Le secret vient déjà d’être renouvelé (formulaire envoyé deux fois?). Rechargez la page du nœud.",
            status=409,
            code="conflict",
        )
    first = bool(instance.extra.get("secret_pending"))
    grace = None if first or revoke_now else dt.timedelta(hours=settings.secret_rotation_grace_hours)
    secret = provisioning.rotate(db, instance, grace)
    instance.extra = {k: v for k, v in instance.extra.items() if k != "secret_pending"}
    instance.updated_at = utcnow()
    db.add(instance)
    audit(
        db,
        "instance.secret_issued" if first else "instance.secret_rotated",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason="" if first else ("previous revoked" if revoke_now else f"previous valid {grace}"),
        ip_address=actor.ip_address,
    )
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None and not first:
        until = (utcnow() + grace).strftime("%Y-%m-%d %H:%M UTC") if grace else ""
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("Secret renouvelé : %(instance)s"),
            N_("Le secret du client de %(instance)s a été renouvelé. L’ancien reste valide jusqu’au %(until)s.")
            if grace
            else N_("Le secret du client de %(instance)s a été renouvelé; l’ancien est révoqué immédiatement."),
            link=f"{settings.issuer}/federation/instances/{slug}",
            instance=instance.name,
            until=until,
        )
    return instance, instance.client_id or "", secret
