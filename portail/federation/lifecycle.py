"""A node's life after registration: who holds a base URL, expiry of unproven registrations, and
editing a node (name, description, login URL, the ids the tool gives Portail, push, URIs, contact).

A base URL is held by a live node, compared on its normalized origin (``origins.origin_key``): a
retired node releases it, and so does a registration that has not proved its domain within
``federation_unproven_days`` (it is retired as ``expired`` — by the periodic sweep, or at once when
someone else claims the URL — and its hoster is told).

Editing changes the client in the same transaction (redirect and logout URIs derived again for
Nextcloud, Synapse and Discourse, grants for push), so the configuration snippets shown afterwards
match what Portail accepts; the client's secret is untouched. An edit names the version it started
from (``Instance.updated_at``): a concurrent edit is refused rather than silently overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.config import Settings
from portail.db import utcnow
from portail.federation import chatons, notice_mail, provisioning, residency
from portail.federation.models import Hoster, Instance
from portail.federation.origins import origin_key
from portail.federation.rules import Actor, FederationError, by_slug, require_hoster
from portail.web import N_

EXPIRED = "expired"
MAX_DESCRIPTION = 2000


def key_of(base_url: str) -> str:
    try:
        return origin_key(base_url)
    except ValueError as exc:
        raise FederationError("L’adresse %(url)s est invalide.", url=base_url[:200]) from exc


def proof_deadline(settings: Settings, instance: Instance) -> dt.datetime:
    issued = instance.challenge_issued_at or instance.created_at
    return issued + dt.timedelta(days=settings.federation_unproven_days)


def _expire(db: Session, settings: Settings, instance: Instance) -> None:
    instance.status, instance.status_reason, instance.updated_at = "retired", EXPIRED, utcnow()
    db.add(instance)
    audit(db, "instance.expired", subject_type="instance", subject_id=instance.slug, reason=instance.base_url[:300])
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None:
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("Inscription expirée : %(instance)s"),
            N_(
                "Le nœud %(instance)s n’a pas prouvé son domaine dans les %(days)s jours : son inscription "
                "a expiré et l’adresse %(url)s est libérée. Inscrivez-le de nouveau au besoin."
            ),
            link=f"{settings.issuer}/federation/hosters/{hoster.slug}",
            instance=instance.name,
            url=instance.base_url,
            days=settings.federation_unproven_days,
        )


def ensure_free(db: Session, settings: Settings, key: str, *, exclude_id: int | None = None) -> None:
    """Refuse (409) when a live node holds the origin ``key``; an expired registration holding it is
    retired on the spot, which releases it."""
    now = utcnow()
    holders = db.exec(select(Instance).where(Instance.origin_key == key, Instance.status != "retired"))
    for holder in holders:
        if holder.id == exclude_id:
            continue
        if holder.status == "awaiting-proof" and proof_deadline(settings, holder) <= now:
            _expire(db, settings, holder)
            continue
        raise FederationError(
            "Une instance est déjà inscrite à l’adresse %(url)s.", status=409, code="conflict", url=holder.base_url
        )


def expire_unproven(db: Session, settings: Settings, limit: int = 200) -> int:
    """Retire the registrations whose proof is overdue (the periodic sweep); returns how many."""
    cutoff = utcnow() - dt.timedelta(days=settings.federation_unproven_days)
    stale = db.exec(
        select(Instance)
        .where(Instance.status == "awaiting-proof", col(Instance.created_at) <= cutoff)
        .order_by(col(Instance.id))
        .limit(limit)
    ).all()
    expired = [i for i in stale if proof_deadline(settings, i) <= utcnow()]
    for instance in expired:
        _expire(db, settings, instance)
    return len(expired)


# ---------------------------------------------------------------- editing


@dataclass
class NodeEdit:
    """The fields an edit changes; ``None`` leaves a field as it is (JSON ``PATCH``)."""

    version: str | None = None  # Instance.updated_at as the editor saw it (ISO 8601)
    name: str | None = None
    description: str | None = None
    description_en: str | None = None  # "" shows the French description to English-speaking members
    purposes: list[str] | None = None  # declared purposes (Law 25), French; one per line in the form
    purposes_en: list[str] | None = None  # their English version ([] shows the French)
    data_categories: list[str] | None = None
    data_categories_en: list[str] | None = None
    login_url: str | None = None  # "" clears it
    provider_identifier: str | None = None  # Nextcloud user_oidc identifier / Synapse idp_id
    nextcloud_provider_id: str | None = None  # the numeric id Nextcloud gave the provider ("" clears it)
    push_notifications: bool | str | None = None  # "" is the software's default
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    backchannel_logout_uri: str | None = None
    contact_email: str | None = None
    members_only: bool | None = None  # only members of the organizations it serves may log in
    jwks_uri: str | None = None  # set: the client authenticates with private_key_jwt; "" back to its secret
    # CHATONS service data (chatons.SERVICE_FIELDS) and where the data lives (residency.FIELDS); absent keys stay
    facts: dict[str, str] | None = None


FACTS = (*chatons.SERVICE_FIELDS, *residency.FIELDS)  # CHATONS service data, where the data lives
# What the node page and ``PATCH /api/v1/federation/instances/{slug}`` may change (besides the facts).
EDITABLE_FIELDS = tuple(f.name for f in fields(NodeEdit) if f.name not in ("version", "facts"))


def _login_url(value: str, instance: Instance) -> str | None:
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if len(value) > 1000 or parts.fragment or not provisioning.same_origin(value, instance.base_url):
        raise FederationError(
            "L’adresse de connexion doit être sur la même origine que l’adresse de base (%(base)s), sans fragment.",
            base=instance.base_url,
        )
    return value


def checked_jwks_uri(value: str, base_url: str) -> str | None:
    """A node's ``jwks_uri`` for ``private_key_jwt`` (same origin as its base URL); ``""`` → ``None``."""
    value = value.strip()
    if not value:
        return None
    if len(value) > 1000 or urlsplit(value).fragment or not provisioning.same_origin(value, base_url):
        raise FederationError(
            "L’adresse des clés (jwks_uri) doit être sur la même origine que l’adresse de base (%(base)s).",
            base=base_url,
        )
    return value


MAX_DECLARED, MAX_DECLARED_LENGTH = 20, 200


def _declared(values: list[str]) -> list[str]:
    """A list of declared purposes or data categories: trimmed, blank lines dropped, bounded."""
    kept = [" ".join(v.split()) for v in values if v.strip()]
    if len(kept) > MAX_DECLARED or any(len(v) > MAX_DECLARED_LENGTH for v in kept):
        raise FederationError(
            "Au plus %(count)s fins ou catégories, de %(length)s caractères chacune.",
            count=MAX_DECLARED,
            length=MAX_DECLARED_LENGTH,
        )
    return kept


def _contact(value: str) -> str:
    value = value.strip()
    local, _at, domain = value.partition("@")
    if value and (not local or "." not in domain or len(value) > 320 or any(c.isspace() for c in value)):
        raise FederationError("L’adresse courriel de contact est invalide.")
    return value


def _snapshot(instance: Instance) -> dict[str, object]:
    return {
        "name": instance.name,
        "description": instance.description,
        "description_en": instance.description_en,
        "purposes": list(instance.purposes),
        "purposes_en": list(instance.purposes_en),
        "data_categories": list(instance.data_categories),
        "data_categories_en": list(instance.data_categories_en),
        "login_url": instance.login_url,
        "provider_identifier": instance.provider_identifier,
        "nextcloud_provider_id": instance.extra.get("user_oidc_provider_id"),
        "push_notifications": instance.push_notifications,
        "redirect_uris": list(instance.redirect_uris),
        "post_logout_redirect_uris": list(instance.post_logout_redirect_uris),
        "backchannel_logout_uri": instance.backchannel_logout_uri,
        "contact_email": instance.contact_email,
        "members_only": instance.members_only,
        "jwks_uri": instance.extra.get("jwks_uri"),
    }


def _apply(instance: Instance, change: NodeEdit) -> list[str]:
    """Validate and apply ``change``; returns the names of the fields that changed."""
    before = _snapshot(instance)
    if change.name is not None:
        name = " ".join(change.name.split())
        if not name or len(name) > 200:
            raise FederationError("Le nom est obligatoire (200 caractères au plus).")
        instance.name = name
    if change.description is not None:
        if len(change.description) > MAX_DESCRIPTION:
            raise FederationError("La description compte au plus %(max)s caractères.", max=MAX_DESCRIPTION)
        instance.description = change.description.strip()
    if change.description_en is not None:
        if len(change.description_en) > MAX_DESCRIPTION:
            raise FederationError("La description en anglais compte au plus %(max)s caractères.", max=MAX_DESCRIPTION)
        instance.description_en = change.description_en.strip()
    for name in ("purposes", "purposes_en", "data_categories", "data_categories_en"):
        declared = getattr(change, name)
        if declared is not None:
            setattr(instance, name, _declared(declared))
    if change.login_url is not None:
        instance.login_url = _login_url(change.login_url, instance)
    if change.provider_identifier is not None:
        instance.provider_identifier = provisioning.check_provider_identifier(change.provider_identifier)
    if change.nextcloud_provider_id is not None:
        numeric = change.nextcloud_provider_id.strip()
        if numeric and not (numeric.isdigit() and len(numeric) <= 9):
            raise FederationError("L’identifiant du fournisseur dans Nextcloud est un nombre (ex. 1).")
        extra = {k: v for k, v in instance.extra.items() if k != "user_oidc_provider_id"}
        instance.extra = {**extra, "user_oidc_provider_id": int(numeric)} if numeric else extra
    if change.push_notifications is not None:
        instance.push_notifications = provisioning.push_setting(change.push_notifications, instance.software)
    if change.contact_email is not None:
        instance.contact_email = _contact(change.contact_email)
    if change.jwks_uri is not None:
        extra = {k: v for k, v in instance.extra.items() if k != "jwks_uri"}
        found = checked_jwks_uri(change.jwks_uri, instance.base_url)
        instance.extra = {**extra, "jwks_uri": found} if found else extra
    if change.members_only is not None:
        if change.members_only and instance.scope == "central":
            raise FederationError("Une instance centrale sert tous les membres : elle ne peut pas être réservée.")
        instance.members_only = change.members_only
    backchannel = instance.backchannel_logout_uri
    if change.backchannel_logout_uri is not None:
        backchannel = change.backchannel_logout_uri.strip() or None
    uris = provisioning.derive(
        instance.software,
        instance.base_url,
        provider_identifier=instance.provider_identifier,
        redirect_uris=instance.redirect_uris if change.redirect_uris is None else change.redirect_uris,
        post_logout_redirect_uris=(
            instance.post_logout_redirect_uris
            if change.post_logout_redirect_uris is None
            else change.post_logout_redirect_uris
        ),
        backchannel_logout_uri=backchannel,
    )
    instance.redirect_uris = uris.redirect_uris
    instance.post_logout_redirect_uris = uris.post_logout_redirect_uris
    instance.backchannel_logout_uri = uris.backchannel_logout_uri
    after = _snapshot(instance)
    facts = change.facts or {}
    declared = chatons.apply_service(instance, facts) + residency.apply(instance, facts)
    return [k for k in before if before[k] != after[k]] + declared


def edit(db: Session, settings: Settings, actor: Actor, slug: str, change: NodeEdit) -> tuple[Instance, list[str]]:
    """Edit a node (its hoster's people or a federation administrator); returns it and what changed."""
    instance = by_slug(db, Instance, slug)
    require_hoster(db, actor, instance.hoster_id)
    if instance.status == "retired":
        raise FederationError("Un nœud retiré ne se modifie plus.", status=409, code="conflict")
    if change.version is not None and change.version != instance.updated_at.isoformat():
        raise FederationError(
            "Le nœud a été modifié entre-temps par quelqu’un d’autre : rechargez la page et recommencez.",
            status=409,
            code="conflict",
        )
    changed = _apply(instance, change)
    if not changed:
        return instance, []
    instance.updated_at = utcnow()
    db.add(instance)
    if set(changed) & {"data_location", "backup_location"}:
        residency.warn_federation(db, settings, instance)
    if provisioning.client_of(db, instance) is not None:
        provisioning.provision(db, settings, instance, administrator=instance.source == "file")
    audit(
        db,
        "instance.edited",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason=", ".join(changed),
        ip_address=actor.ip_address,
    )
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None:
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("Nœud modifié : %(instance)s"),
            N_("Le nœud %(instance)s a été modifié (%(fields)s). Vérifiez sa configuration sur sa page."),
            link=f"{settings.issuer}/federation/instances/{slug}",
            instance=instance.name,
            fields=", ".join(changed),
        )
    return instance, changed
