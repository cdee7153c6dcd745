"""Right to erasure: the deletion request and its grace period.

A member asks (the route re-checks their password first). The request is recorded ``pending`` with
a due date ``deletion_grace_days`` ahead, every session of the member ends (so their tools receive
back-channel logouts), and a mail says when the purge will happen and how to stop it: logging in
before then cancels the request (``hooks.cancel_deletion_on_login``, registered with
``sessions.on_login`` by ``create_app``), as does the "keep my account" button. At the due date
the background job purges the account (``purge.py``). A second request while one is pending is refused with its dates; a
partial unique index makes a concurrent double submit fail the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from portail.accounts import sessions
from portail.accounts.members import audit
from portail.accounts.models import Member
from portail.config import Settings
from portail.consent import data_mail
from portail.consent.errors import N_, ConsentError
from portail.consent.models import DataExport, DeletionRequest
from portail.db import utcnow


@dataclass(frozen=True)
class QueueEntry:
    """A line of the privacy officer's queue (deletion or access request), without personal data once purged."""

    kind: str  # deletion | access
    reference: str
    status: str
    requested_at: dt.datetime
    due_at: dt.datetime | None
    done_at: dt.datetime | None
    member_email: str | None  # None once purged


def pending_for(db: Session, member_id: int) -> DeletionRequest | None:
    return db.exec(
        select(DeletionRequest).where(DeletionRequest.member_id == member_id, DeletionRequest.status == "pending")
    ).first()


def _date(value: dt.datetime) -> str:
    return value.date().isoformat()


def request_deletion(
    db: Session, settings: Settings, member_id: int, *, ip_address: str = "", immediate: bool = False
) -> DeletionRequest:
    """Record the request, end every session of the member and tell them by mail.

    ``immediate`` (``portail users delete --now``) makes it due at once, without the mail.
    """
    member = db.get(Member, member_id)
    if member is None:
        raise ConsentError("Ce compte n’existe plus.", status=404)
    existing = pending_for(db, member_id)
    if existing is not None:
        raise ConsentError(
            "Vous avez déjà demandé la suppression de votre compte le %(requested)s ; elle aura lieu le %(due)s.",
            status=409,
            requested=_date(existing.requested_at),
            due=_date(existing.due_at),
        )
    now = utcnow()
    grace = dt.timedelta(days=0 if immediate else settings.deletion_grace_days)
    row = DeletionRequest(member_id=member_id, requested_at=now, due_at=now + grace)
    db.add(row)
    try:
        db.flush()
    except IntegrityError as exc:  # a concurrent request won
        raise ConsentError("Vous avez déjà demandé la suppression de votre compte.", status=409) from exc
    audit(
        db,
        "privacy.deletion_requested",
        actor_id=member_id,
        member_id=member_id,
        subject_type="deletion_request",
        subject_id=row.reference,
        ip_address=ip_address,
    )
    sessions.end_member_sessions(db, member_id, "deletion-requested")
    if immediate:
        return row
    data_mail.tell(
        settings,
        member.email,
        "deletion_requested",
        member.locale,
        subject=N_("Votre compte sera supprimé"),
        name=member.name,
        due=_date(row.due_at),
        login_url=f"{settings.issuer}/login",
    )
    return row


def cancel(db: Session, settings: Settings, member_id: int, reason: str, *, actor_id: int | None = None) -> bool:
    """Cancel the member's pending request; returns False when there was none (or the purge began)."""
    row = pending_for(db, member_id)
    if row is None:
        return False
    result = db.exec(
        update(DeletionRequest)
        .where(col(DeletionRequest.id) == row.id, col(DeletionRequest.status) == "pending")
        .values(status="cancelled", cancelled_at=utcnow(), cancel_reason=reason)
    )
    if result.rowcount != 1:
        return False
    audit(
        db,
        "privacy.deletion_cancelled",
        actor_id=actor_id,
        member_id=member_id,
        subject_type="deletion_request",
        subject_id=row.reference,
        reason=reason,
    )
    member = db.get(Member, member_id)
    if member is not None:
        data_mail.tell(
            settings,
            member.email,
            "deletion_cancelled",
            member.locale,
            subject=N_("La suppression de votre compte est annulée"),
            name=member.name,
            because_login=reason == "login",
        )
    return True


def due(db: Session, now: dt.datetime | None = None) -> list[int]:
    """Pending requests whose grace period is over."""
    rows = db.exec(
        select(DeletionRequest.id)
        .where(DeletionRequest.status == "pending", col(DeletionRequest.due_at) <= (now or utcnow()))
        .order_by(col(DeletionRequest.due_at))
        .limit(50)
    )
    return [i for i in rows if i is not None]


def queue(db: Session, *, limit: int = 200) -> list[QueueEntry]:
    """The privacy officer's queue: deletion requests and exports (access requests), newest first.

    Reads only the columns the queue shows (never an export's archive, up to megabytes each), at
    most ``limit`` rows of each kind by primary key, and the e-mail addresses of the entries kept.
    """
    core = db.connection()  # Core rows of a few columns (sqlmodel's select types at most four)
    deletions = core.execute(
        sa.select(
            col(DeletionRequest.reference),
            col(DeletionRequest.status),
            col(DeletionRequest.requested_at),
            col(DeletionRequest.due_at),
            col(DeletionRequest.purged_at),
            col(DeletionRequest.cancelled_at),
            col(DeletionRequest.member_id),
        )
        .order_by(col(DeletionRequest.id).desc())
        .limit(limit)
    ).all()
    exports = core.execute(
        sa.select(
            col(DataExport.id),
            col(DataExport.status),
            col(DataExport.requested_at),
            col(DataExport.ready_at),
            col(DataExport.member_id),
        )
        .order_by(col(DataExport.id).desc())
        .limit(limit)
    ).all()
    found: list[tuple[QueueEntry, int | None]] = [
        (QueueEntry("deletion", reference, status, requested, due, purged or cancelled, None), member_id)
        for reference, status, requested, due, purged, cancelled, member_id in deletions
    ]
    found += [
        (QueueEntry("access", f"export-{export_id}", status, requested, None, ready, None), member_id)
        for export_id, status, requested, ready, member_id in exports
    ]
    found.sort(key=lambda pair: pair[0].requested_at, reverse=True)
    kept = found[:limit]
    ids = {member_id for _entry, member_id in kept if member_id}
    emails: dict[int | None, str] = {}
    if ids:
        rows = core.execute(sa.select(col(Member.id), col(Member.email)).where(col(Member.id).in_(ids)))
        emails = {member_id: email for member_id, email in rows}
    return [replace(entry, member_email=emails.get(member_id)) if member_id else entry for entry, member_id in kept]
