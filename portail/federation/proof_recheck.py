"""The periodic re-check of every node's proof of control, and what follows when a proof is lost.

Every ``proof_recheck_hours`` (24; 0 turns it off) each registered node awaiting approval or active
has its proof checked again by the method its hoster chose (``proof.py``: the challenge served over
HTTP, or the DNS TXT record). ``recheck_due(settings, db)`` checks the nodes whose turn has come; the
prober's pass calls it (``probes.probe_pass``, a leader-only background task), so one leader runs it.

States (``state(instance)``)::

    ok --re-check fails--> lost (hoster mailed) --still lost after proof_grace_days--> escalated
     ^                       |                      (federation administrators mailed; shown on
     +---- a check passes ---+----------------------  /federation/admin and the hoster's page)
           (hoster mailed, and the administrators when it had been escalated: "restored")

    unconfirmed --a check passes--> ok
         |
         +--re-check fails--> unconfirmed (hoster invited once to keep the proof in place; never escalated)

``unconfirmed`` is a node approved before the re-check existed (migration ``federation_0011``): its
hoster proved the domain once and was never told to keep the proof in place, so a failed re-check
is no evidence of a lost domain and does not flag it. Nodes declared in ``instances.toml`` (the
federation vouches for them) and demonstration entries are ``declared`` and never re-checked.

A failure that says nothing about the domain (no answer in time, SERVFAIL, a 5xx, a connection
refused: ``inconclusive``) flags a proof that held only when the next check, an hour later
(``RETRY_SOON``, or a quarter of the period when shorter), fails too.

A hoster may check now, and switch method, from the node's page, the API or ``portail instances
verify SLUG --method http|dns``: a passing check records the method and restores a lost proof; a
failing one is shown with its reason and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, or_, select

from portail.accounts.members import audit
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation import nodes, notice_mail, proof, verification
from portail.federation.models import Hoster, Instance
from portail.federation.rules import Actor, FederationError
from portail.federation.verification import Refused
from portail.web import N_, translate

RECHECKED = ("awaiting-approval", "active")
CHECKABLE = (*RECHECKED, "suspended")
BATCH = 200  # nodes re-checked per call at most; the rest wait for the next round
# failures that say nothing about the domain's control: a proof that held is flagged only when one
# of them happens twice in a row (the second check comes RETRY_SOON after the first)
INCONCLUSIVE = frozenset({"timeout", "unreachable", "dns", "dns-timeout", "dns-servfail", "dns-error"})
RETRY_SOON = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Target:
    id: int
    slug: str
    method: str
    base_url: str
    token: str


def declared(instance: Instance) -> bool:
    """Vouched for by the federation (instances.toml, demo entries): nothing to re-check."""
    return instance.source == "file" or instance.demo or not instance.challenge


def state(instance: Instance) -> str:
    """``pending`` | ``ok`` | ``unconfirmed`` | ``lost`` | ``escalated`` | ``declared`` | ``none``."""
    if instance.status == "awaiting-proof":
        return "pending"
    if instance.status == "retired":
        return "none"
    if declared(instance):
        return "declared"
    if instance.proof_ok_at is None:
        return "unconfirmed"
    if instance.proof_escalated_at is not None:
        return "escalated"
    if instance.proof_lost_at is not None:
        return "lost"
    return "ok"


def failure_text(instance: Instance, locale: str = "en") -> str:
    failure = instance.proof_failure or {}
    message = str(failure.get("message") or "")
    params = failure.get("params") if isinstance(failure.get("params"), dict) else {}
    return translate(locale, message, **(params or {})) if message else ""


def view(instance: Instance) -> dict[str, Any]:
    """The JSON shape of a node's proof (API, CLI)."""

    def at(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    failure = instance.proof_failure or {}
    data: dict[str, Any] = {
        "method": instance.proof_method,
        "state": state(instance),
        "checked_at": at(instance.proof_checked_at),
        "due_at": at(instance.proof_due_at),
        "ok_at": at(instance.proof_ok_at),
        "lost_at": at(instance.proof_lost_at),
        "escalated_at": at(instance.proof_escalated_at),
        "error": {"code": failure.get("code"), "description": failure_text(instance)} if failure else None,
    }
    if instance.challenge and not declared(instance):
        data["publish"] = proof.instructions(instance.base_url, instance.challenge)
    return data


# ---------------------------------------------------------------- the periodic re-check


def _due(db: Session, settings: Settings) -> list[Target]:
    rows = db.exec(
        select(Instance)
        .where(col(Instance.status).in_(RECHECKED), Instance.source != "file", col(Instance.demo).is_(False))
        .where(col(Instance.challenge).is_not(None))
        .where(or_(col(Instance.proof_due_at).is_(None), col(Instance.proof_due_at) <= utcnow()))
        .order_by(col(Instance.proof_due_at).is_(None).desc(), col(Instance.proof_due_at), col(Instance.id))
        .limit(BATCH)
    )
    return [Target(i.id or 0, i.slug, i.proof_method, i.base_url, i.challenge or "") for i in rows if not declared(i)]


async def recheck_due(settings: Settings, db: Database) -> int:
    """Re-check the proofs whose turn has come (``probe_concurrency`` at a time); returns how many."""
    if settings.proof_recheck_hours <= 0:
        return 0
    targets = await db.run(_due, settings)
    gate = asyncio.Semaphore(max(1, settings.probe_concurrency))
    budget = settings.outbound_timeout_seconds * 2 + settings.dns_timeout_seconds + 2

    async def one(target: Target) -> tuple[Target, Refused | None]:
        async with gate:
            try:
                async with asyncio.timeout(budget):
                    await proof.check(settings, target.method, target.base_url, target.token)
            except Refused as exc:
                return target, exc
            except TimeoutError:
                return target, Refused("timeout", "La vérification de la preuve a pris trop de temps.")
            return target, None

    results = list(await asyncio.gather(*(one(t) for t in targets)))
    if results:
        await db.run(_record_all, settings, results)
    return len(results)


def _record_all(db: Session, settings: Settings, results: list[tuple[Target, Refused | None]]) -> None:
    for target, failure in results:
        instance = db.get(Instance, target.id)
        # changed while it was checked (moved, method switched, retired): its next turn will tell
        if instance is None or instance.status not in RECHECKED or declared(instance):
            continue
        if (instance.proof_method, instance.base_url, instance.challenge) != (
            target.method,
            target.base_url,
            target.token,
        ):
            continue
        if failure is None:
            _passed(db, settings, instance, target.method)
        else:
            _failed(db, settings, instance, failure)


def _failure(exc: Refused) -> dict[str, Any]:
    params = {k: v if isinstance(v, int | float) else str(v)[:300] for k, v in exc.params.items()}
    return {"code": exc.code, "message": exc.message, "params": params}


def _both(exc: Refused) -> str:
    french = exc.message % exc.params if exc.params else exc.message
    english = translate("en", exc.message, **exc.params)
    return french if english == french else f"{french} / {english}"


def _hoster_of(db: Session, instance: Instance) -> Hoster | None:
    return db.get(Hoster, instance.hoster_id) if instance.hoster_id else None


def _page(settings: Settings, instance: Instance) -> str:
    return f"{settings.issuer}/federation/instances/{instance.slug}"


def _place(instance: Instance) -> str:
    return proof.where(instance.proof_method, instance.base_url)


def inconclusive(exc: Refused) -> bool:
    """A failure that says nothing about who controls the domain (no answer, a server error)."""
    if exc.code in INCONCLUSIVE:
        return True
    status = exc.params.get("http_status")
    return exc.code == "challenge-status" and isinstance(status, int) and status >= 500


def _failed(db: Session, settings: Settings, instance: Instance, exc: Refused) -> None:
    now = utcnow()
    was = state(instance)
    period = dt.timedelta(hours=settings.proof_recheck_hours)
    first_doubt = inconclusive(exc) and not (instance.proof_failure or {}).get("inconclusive")
    instance.proof_checked_at, instance.proof_failure = now, {**_failure(exc), "inconclusive": inconclusive(exc)}
    instance.proof_due_at = now + period
    if was == "ok" and first_doubt:
        # one unanswered check is not a lost domain: ask again sooner, and flag only if it fails again
        instance.proof_due_at = now + min(RETRY_SOON, period / 4)
        db.add(instance)
        return
    hoster = _hoster_of(db, instance)
    to_hoster = notice_mail.hoster_recipients(db, settings, hoster) if hoster is not None else []
    params = {"instance": instance.name, "method": instance.proof_method.upper(), "where": _place(instance)}
    if was == "unconfirmed":
        if instance.proof_lost_at is None:  # invited once
            instance.proof_lost_at = now
            _record_and_tell(
                db,
                settings,
                instance,
                exc,
                "instance.proof_unconfirmed",
                to_hoster,
                N_("Gardez la preuve de contrôle en place : %(instance)s"),
                N_(
                    "Portail vérifie maintenant régulièrement la preuve de contrôle de chaque nœud. Celle de "
                    "%(instance)s (%(method)s, %(where)s) n’a pas pu être confirmée : gardez le jeton en place, "
                    "ou choisissez la preuve par DNS sur la page du nœud. Tant que sa preuve n’a pas été "
                    "confirmée une fois, ce nœud n’est pas signalé à la fédération."
                ),
                link=_page(settings, instance),
                **params,
            )
    elif was == "ok":
        instance.proof_lost_at = now
        _record_and_tell(
            db,
            settings,
            instance,
            exc,
            "instance.proof_lost",
            to_hoster,
            N_("Preuve de contrôle perdue : %(instance)s"),
            N_(
                "La preuve de contrôle du domaine de %(instance)s (%(method)s, %(where)s) a échoué. "
                "Rétablissez-la d’ici %(days)s jours, sinon les administrateurs de la fédération seront prévenus."
            ),
            link=_page(settings, instance),
            days=f"{settings.proof_grace_days:g}",
            **params,
        )
    elif was == "lost" and instance.proof_lost_at is not None:
        if now - instance.proof_lost_at >= dt.timedelta(days=settings.proof_grace_days):
            instance.proof_escalated_at = now
            _record_and_tell(
                db,
                settings,
                instance,
                exc,
                "instance.proof_escalated",
                notice_mail.admin_recipients(db),
                N_("Nœud sans preuve de contrôle : %(instance)s"),
                N_(
                    "Le nœud %(instance)s (%(url)s) de l’hébergeur %(hoster)s n’a plus de preuve de contrôle "
                    "de son domaine depuis le %(since)s (%(method)s, %(where)s), malgré l’avis envoyé à "
                    "l’hébergeur."
                ),
                link=f"{settings.issuer}/federation/admin",
                url=instance.base_url,
                hoster=hoster.name if hoster else "-",
                since=instance.proof_lost_at.strftime("%Y-%m-%d"),
                **params,
            )
    db.add(instance)


def _record_and_tell(
    db: Session,
    settings: Settings,
    node: Instance,
    exc: Refused,
    event: str,
    recipients: list[notice_mail.Recipient],
    subject: str,
    body: str,
    /,
    **params: str,
) -> None:
    """Audit a failed proof as ``event`` and mail ``recipients`` (the failure's reason in both languages)."""
    audit(db, event, subject_type="instance", subject_id=node.slug, reason=f"{exc.code}: {exc}"[:500])
    notice_mail.send(settings, recipients, subject, body, reason=_both(exc), **params)


def _passed(db: Session, settings: Settings, instance: Instance, method: str, actor: Actor | None = None) -> None:
    now = utcnow()
    was = state(instance)
    instance.proof_method, instance.proof_checked_at, instance.proof_ok_at = method, now, now
    instance.proof_due_at = now + dt.timedelta(hours=settings.proof_recheck_hours)
    instance.proof_lost_at = instance.proof_escalated_at = instance.proof_failure = None
    db.add(instance)
    actor_id = actor.member_id if actor else None
    if was == "unconfirmed":
        audit(
            db,
            "instance.proof_confirmed",
            actor_id=actor_id,
            subject_type="instance",
            subject_id=instance.slug,
            reason=method,
        )
    if was not in ("lost", "escalated"):
        return
    audit(
        db,
        "instance.proof_restored",
        actor_id=actor_id,
        subject_type="instance",
        subject_id=instance.slug,
        reason=method,
    )
    hoster = _hoster_of(db, instance)
    recipients = notice_mail.hoster_recipients(db, settings, hoster) if hoster is not None else []
    if was == "escalated":
        recipients += notice_mail.admin_recipients(db)
    notice_mail.send(
        settings,
        recipients,
        N_("Preuve de contrôle rétablie : %(instance)s"),
        N_("La preuve de contrôle du domaine de %(instance)s (%(method)s) est de nouveau valide."),
        link=_page(settings, instance),
        instance=instance.name,
        method=method.upper(),
    )


# ---------------------------------------------------------------- checking now (page, API, CLI)


async def check_now(db: Database, settings: Settings, actor: Actor, slug: str, method: str | None = None) -> Instance:
    """Check a node's proof now, by ``method`` (default: the node's own). A node awaiting its first
    proof is verified (``nodes.verify``); for the others a passing check records the method and
    restores a lost proof, a failing one raises (422) and changes nothing."""
    instance = await db.run(nodes.get_for, actor, slug)
    if instance.status == "awaiting-proof":
        return await nodes.verify(db, settings, actor, slug, method or "http")
    if instance.status not in CHECKABLE:
        raise FederationError(
            "Ce nœud n’a pas de preuve à vérifier (statut : %(state)s).",
            status=409,
            code="conflict",
            state=instance.status,
        )
    if declared(instance):
        raise FederationError(
            "Ce nœud est déclaré par la fédération (instances.toml) : il n’a pas de preuve à vérifier.",
            status=409,
            code="conflict",
        )
    chosen = proof.method_of(method, instance.proof_method)
    token, base_url = instance.challenge or "", instance.base_url
    try:
        await proof.check(settings, chosen, base_url, token)
    except Refused as exc:
        await db.run(
            verification.audit_refusal,
            exc,
            proof.where(chosen, base_url),
            actor_id=actor.member_id,
            subject_type="instance",
            subject_id=slug,
        )
        raise FederationError(exc.message, status=422, code="verification_failed", **exc.params) from exc
    return await db.run(_checked, settings, actor, slug, chosen, token, base_url)


def _checked(db: Session, settings: Settings, actor: Actor, slug: str, method: str, token: str, base: str) -> Instance:
    instance = nodes.get_for(db, actor, slug)
    if (instance.challenge, instance.base_url) != (token, base):
        raise FederationError("Le nœud a changé entre-temps; vérifiez de nouveau.", status=409, code="conflict")
    _passed(db, settings, instance, method, actor)
    return instance


# ---------------------------------------------------------------- lists (administration, CLI)


def flagged(db: Session, *, escalated_only: bool = False, hoster_id: int | None = None) -> list[Instance]:
    """Live nodes whose proof is lost (``escalated_only``: past the grace, told to the federation)."""
    query = select(Instance).where(col(Instance.status).in_(CHECKABLE), col(Instance.proof_ok_at).is_not(None))
    query = query.where(col(Instance.proof_lost_at).is_not(None))
    if escalated_only:
        query = query.where(col(Instance.proof_escalated_at).is_not(None))
    if hoster_id is not None:
        query = query.where(Instance.hoster_id == hoster_id)
    return list(db.exec(query.order_by(col(Instance.proof_lost_at)).limit(500)))


def listing(db: Session) -> list[dict[str, Any]]:
    """Every live node with its proof (``portail instances proof``)."""
    rows = db.exec(select(Instance).where(Instance.status != "retired").order_by(col(Instance.slug)).limit(5000))
    return [{"slug": i.slug, "status": i.status, "base_url": i.base_url, **view(i)} for i in rows]
