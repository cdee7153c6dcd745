"""A node changing hands or address: transfer to another hoster, and domain move.

**Transfer** — both hosters accept: an administrator of the current hoster (or the federation)
offers the node to another *active* hoster (``Instance.transfer_to_id``); that hoster's
administrators are mailed and accept or refuse on their hoster's page (or the API). Accepted, the
node (its client, links and history) belongs to the new hoster from then on; either way both
hosters are told. The offer can be withdrawn until it is answered.

**Domain move** — the new base URL is proven before the switch, the old one released after: the
hoster's people name the new URL (checked like a registration: syntax, outbound guard, no live
node holding its origin); Portail issues a new challenge to publish for the *new* URL, served there
over HTTP or in a DNS TXT record at ``_portail-challenge.<new host>`` (``proof.py``, the hoster's
choice, e.g. when the new host does not serve pages yet); "verify" checks it, then in one transaction
the node takes the new base URL and origin, its URIs follow
(derived again for Nextcloud, Synapse and Discourse; entered ones and the login URL moved from the
old origin to the new one), its client is updated, and the old URL is free for anyone. The pending
move lives in ``Instance.extra["move"]`` until then, and can be cancelled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from portail.accounts.members import audit
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation import hosters, lifecycle, notice_mail, proof, provisioning, verification
from portail.federation.models import Hoster, Instance
from portail.federation.nodes import normalize_base_url
from portail.federation.rules import Actor, FederationError, by_slug, forbidden, require_hoster
from portail.federation.verification import Refused
from portail.web import N_

MOVABLE = ("awaiting-approval", "active", "suspended")


def _instance(db: Session, actor: Actor, slug: str, *, admin: bool) -> Instance:
    instance = by_slug(db, Instance, slug)
    require_hoster(db, actor, instance.hoster_id, admin=admin)
    if instance.status == "retired":
        raise FederationError("Un nœud retiré ne se modifie plus.", status=409, code="conflict")
    return instance


def _tell(
    db: Session, settings: Settings, hoster: Hoster | None, subject: str, text: str, *, link: str, **params: Any
) -> None:
    if hoster is not None:
        notice_mail.send(
            settings, notice_mail.hoster_recipients(db, settings, hoster), subject, text, link=link, **params
        )


def _record(db: Session, actor: Actor, action: str, slug: str, reason: str) -> None:
    audit(
        db,
        action,
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason=reason[:500],
        ip_address=actor.ip_address,
    )


# ---------------------------------------------------------------- transfer


def offer_transfer(db: Session, settings: Settings, actor: Actor, slug: str, to_hoster: str) -> Instance:
    """The current hoster's administrator offers the node to another active hoster."""
    instance = _instance(db, actor, slug, admin=True)
    target = hosters.get(db, to_hoster.strip())
    if target.status != "active":
        raise FederationError(
            "L’hébergeur %(hoster)s n’est pas actif dans la fédération.",
            status=409,
            code="conflict",
            hoster=target.name,
        )
    if target.id == instance.hoster_id:
        raise FederationError("Le nœud appartient déjà à cet hébergeur.", status=409, code="conflict")
    instance.transfer_to_id, instance.updated_at = target.id, utcnow()
    db.add(instance)
    _record(db, actor, "instance.transfer_offered", slug, f"to={target.slug}")
    _tell(
        db,
        settings,
        target,
        N_("Nœud proposé : %(instance)s"),
        N_("On vous propose de reprendre le nœud %(instance)s (%(url)s). Acceptez ou refusez sur votre page."),
        link=f"{settings.issuer}/federation/hosters/{target.slug}",
        instance=instance.name,
        url=instance.base_url,
    )
    return instance


def answer_transfer(db: Session, settings: Settings, actor: Actor, slug: str, *, accept: bool) -> Instance:
    """The receiving hoster's administrator accepts or refuses; the offering one may withdraw (refuse)."""
    instance = by_slug(db, Instance, slug)
    if instance.transfer_to_id is None or instance.status == "retired":
        raise FederationError("Aucun transfert n’est en attente pour ce nœud.", status=409, code="conflict")
    target = db.get(Hoster, instance.transfer_to_id)
    source = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    receiving = actor.federation_admin or (target is not None and _is_admin(db, actor, target))
    if accept and not receiving:
        raise forbidden()
    if not accept and not receiving and not (source is not None and _is_admin(db, actor, source)):
        raise forbidden()
    if accept and (target is None or target.status != "active"):
        raise FederationError("L’hébergeur destinataire n’est plus actif.", status=409, code="conflict")
    instance.transfer_to_id, instance.updated_at = None, utcnow()
    if accept and target is not None:
        instance.hoster_id = target.id
    db.add(instance)
    _record(
        db,
        actor,
        "instance.transferred" if accept else "instance.transfer_refused",
        slug,
        target.slug if target else "",
    )
    subject = N_("Transfert accepté : %(instance)s") if accept else N_("Transfert annulé : %(instance)s")
    text = (
        N_("Le nœud %(instance)s appartient désormais à %(receiver)s.")
        if accept
        else N_("Le nœud %(instance)s reste à son hébergeur actuel : le transfert à %(receiver)s est annulé.")
    )
    for hoster in {h.id: h for h in (source, target) if h is not None}.values():
        _tell(
            db,
            settings,
            hoster,
            subject,
            text,
            link=f"{settings.issuer}/federation/instances/{slug}",
            instance=instance.name,
            receiver=target.name if target else "",
        )
    return instance


def _is_admin(db: Session, actor: Actor, hoster: Hoster) -> bool:
    try:
        require_hoster(db, actor, hoster.id, admin=True)
    except FederationError:
        return False
    return True


# ---------------------------------------------------------------- domain move


async def request_move(db: Database, settings: Settings, actor: Actor, slug: str, new_url: str) -> Instance:
    """Name the new base URL; returns the node with ``extra["move"]`` (URL and challenge to serve)."""
    try:
        target = normalize_base_url(new_url, settings)
        await verification.check_url(target, settings)
    except Refused as exc:
        if exc.code != "dns":
            raise FederationError(exc.message, **exc.params) from exc
        target = new_url.strip().rstrip("/")
    return await db.run(_move_requested, settings, actor, slug, target)


def _move_requested(db: Session, settings: Settings, actor: Actor, slug: str, target: str) -> Instance:
    instance = _instance(db, actor, slug, admin=False)
    if instance.status not in MOVABLE:
        raise FederationError("Prouvez d’abord le domaine actuel du nœud.", status=409, code="conflict")
    key = lifecycle.key_of(target)
    if key == instance.origin_key:
        raise FederationError("C’est déjà l’adresse du nœud.", status=409, code="conflict")
    lifecycle.ensure_free(db, settings, key, exclude_id=instance.id)
    move = {"url": target, "challenge": verification.new_challenge(), "at": utcnow().isoformat()}
    instance.extra = {**instance.extra, "move": move}
    instance.updated_at = utcnow()
    db.add(instance)
    _record(db, actor, "instance.move_requested", slug, f"{instance.base_url} -> {target}")
    return instance


def cancel_move(db: Session, actor: Actor, slug: str) -> Instance:
    instance = _instance(db, actor, slug, admin=False)
    if "move" in instance.extra:
        instance.extra = {k: v for k, v in instance.extra.items() if k != "move"}
        instance.updated_at = utcnow()
        db.add(instance)
        _record(db, actor, "instance.move_cancelled", slug, "")
    return instance


async def verify_move(
    db: Database, settings: Settings, actor: Actor, slug: str, method: str | None = "http"
) -> Instance:
    """Check the challenge for the new URL by ``method`` (``http``: served at the new URL; ``dns``: TXT
    record of the new host); proven, switch the node to it (the old URL is released)."""
    chosen = proof.method_of(method)
    instance = await db.run(_instance, actor, slug, admin=False)
    move = instance.extra.get("move")
    if not isinstance(move, dict):
        raise FederationError("Aucun changement de domaine n’est en cours.", status=409, code="conflict")
    try:
        await proof.check(settings, chosen, str(move["url"]), str(move["challenge"]))
    except Refused as exc:
        await db.run(
            verification.audit_refusal,
            exc,
            proof.where(chosen, str(move["url"])),
            actor_id=actor.member_id,
            subject_type="instance",
            subject_id=slug,
        )
        raise FederationError(exc.message, status=422, code="verification_failed", **exc.params) from exc
    return await db.run(_switch, settings, actor, slug, str(move["url"]), str(move["challenge"]), chosen)


def _carried(uri: str, old: str, new: str) -> str:
    """``uri`` under the old base URL (or on its origin) carried to the new one; others unchanged."""
    if uri == old or uri.startswith((old + "/", old + "?")):
        return new + uri[len(old) :]
    if provisioning.same_origin(uri, old):
        target = urlsplit(new)
        return urlsplit(uri)._replace(scheme=target.scheme, netloc=target.netloc).geturl()
    return uri


def _switch(
    db: Session, settings: Settings, actor: Actor, slug: str, target: str, challenge: str, method: str
) -> Instance:
    instance = _instance(db, actor, slug, admin=False)
    move = instance.extra.get("move")
    if not isinstance(move, dict) or move.get("challenge") != challenge:
        raise FederationError("Le changement de domaine a changé entre-temps.", status=409, code="conflict")
    key = lifecycle.key_of(target)
    lifecycle.ensure_free(db, settings, key, exclude_id=instance.id)
    old = instance.base_url

    def carry(uri: str) -> str:
        return _carried(uri, old, target)

    uris = provisioning.derive(
        instance.software,
        target,
        provider_identifier=instance.provider_identifier,
        redirect_uris=[carry(u) for u in instance.redirect_uris],
        post_logout_redirect_uris=[carry(u) for u in instance.post_logout_redirect_uris],
        backchannel_logout_uri=carry(instance.backchannel_logout_uri) if instance.backchannel_logout_uri else None,
    )
    instance.base_url, instance.origin_key = target, key
    instance.redirect_uris = uris.redirect_uris
    instance.post_logout_redirect_uris = uris.post_logout_redirect_uris
    instance.backchannel_logout_uri = uris.backchannel_logout_uri
    instance.login_url = carry(instance.login_url) if instance.login_url else None
    # the new URL's challenge, by the method that proved it, is the node's proof from now on
    # (re-checked there, proof_recheck.py)
    instance.challenge, instance.proof_method, instance.proof_failure = challenge, method, None
    instance.proof_ok_at = instance.proof_checked_at = utcnow()
    instance.proof_due_at = utcnow() + dt.timedelta(hours=settings.proof_recheck_hours)
    instance.proof_lost_at = instance.proof_escalated_at = None
    instance.extra = {k: v for k, v in instance.extra.items() if k != "move"}
    instance.updated_at = utcnow()
    db.add(instance)
    if provisioning.client_of(db, instance) is not None:
        provisioning.provision(db, settings, instance, administrator=instance.source == "file")
    _record(db, actor, "instance.moved", slug, f"{old} -> {target}")
    _tell(
        db,
        settings,
        db.get(Hoster, instance.hoster_id) if instance.hoster_id else None,
        N_("Nœud déplacé : %(instance)s"),
        N_(
            "Le nœud %(instance)s répond maintenant à %(url)s; l’ancienne adresse %(old)s est libérée. "
            "Mettez à jour sa configuration (sa page la montre)."
        ),
        link=f"{settings.issuer}/federation/instances/{slug}",
        instance=instance.name,
        url=target,
        old=old,
    )
    return instance
