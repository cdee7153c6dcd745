"""Telling members that a tool they use was withdrawn: when the federation suspends an instance, or
an instance is retired (by its hoster, the federation, or ``instances.toml --prune``), each member
who used it — an active consent or a grant for its client — finds a notice in their inbox, in their
language, attributed to that tool (so it also reaches their email digest). Portail has already logged
them out of the tool (back-channel logout, ``federation.provisioning.disable``); the notice says so.

The notice does not repeat the federation's reason, which is written for the hoster. It is delivered
whatever the member's preference for the tool: it is about their access, not the tool's news.
Registered with ``federation.provisioning.on_withdrawn`` by ``install`` (the application and the CLI).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation import provisioning
from portail.federation.models import Instance
from portail.notifications import inbox
from portail.oidc.models import Consent, Grant
from portail.web import N_, translate

BATCH = 500
NOTICES = {
    "suspend": (
        N_("%(instance)s est suspendu"),
        N_(
            "La fédération En commun a suspendu %(instance)s. Vous en avez été déconnecté et vous ne pouvez "
            "plus vous y connecter par Portail pour l’instant. Vos autres outils ne sont pas touchés."
        ),
    ),
    "retire": (
        N_("%(instance)s est retiré d’En commun"),
        N_(
            "%(instance)s ne fait plus partie de la fédération En commun. Vous en avez été déconnecté et il "
            "n’apparaît plus sur votre portail. Vos autres outils ne sont pas touchés."
        ),
    ),
}


def members_of(session: Session, client_id: str) -> list[Member]:
    """The active members who used this client: an active consent, or a grant (revoked or not)."""
    consented = select(Consent.member_id).where(Consent.client_id == client_id, col(Consent.withdrawn_at).is_(None))
    granted = select(Grant.member_id).where(Grant.client_id == client_id, col(Grant.member_id).is_not(None))
    query = select(Member).where(col(Member.id).in_(consented.union(granted)), col(Member.disabled_at).is_(None))
    return list(session.exec(query.order_by(col(Member.id))))


def tell_members(session: Session, settings: Settings, instance: Instance, action: str, reason: str) -> int:
    """The ``on_withdrawn`` listener: one inbox notice per member of the instance; returns how many."""
    if action not in NOTICES or not instance.client_id or instance.id is None:
        return 0
    title, body = NOTICES[action]
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    rows = [
        {
            "member_id": member.id,
            "instance_id": instance.id,
            "external_id": f"portail:{action}:{stamp}:{member.id}",
            "kind": "instance-suspended" if action == "suspend" else "instance-retired",
            "title": translate(member.locale, title, instance=instance.name)[:300],
            "body": translate(member.locale, body, instance=instance.name),
            "origin": "portail",
        }
        for member in members_of(session, instance.client_id)
    ]
    for start in range(0, len(rows), BATCH):
        inbox.deliver(session, rows[start : start + BATCH])
    return len(rows)


def install(db: Database) -> None:
    """Tell the members of an instance withdrawn through ``db`` (the application's or a command's database)."""
    provisioning.on_withdrawn(db, tell_members)
