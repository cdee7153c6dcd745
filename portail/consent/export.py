"""Right of access and portability: the export job and its signed download link.

A member asks (one click); a ``DataExport`` row is created ``pending`` and the archive is built in
the background (``run``: the request is claimed with a conditional update, so one worker builds it
even when several run the jobs). The JSON document (``archive.build``) is kept in the database,
so any node behind the load balancer can serve it, for ``LINK_HOURS`` hours, then dropped.

The download link carries an itsdangerous signature of the export id and the member's public id,
timestamped: it is refused when forged (400), older than ``LINK_HOURS`` (410), opened by someone
else than the member who asked (403), or when the archive has expired (410).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, col, select, update

from portail.accounts.members import audit
from portail.accounts.models import Member
from portail.config import Settings
from portail.consent import archive, data_mail
from portail.consent.errors import N_, ConsentError
from portail.consent.models import DataExport
from portail.db import Database, utcnow

log = logging.getLogger("portail.consent.export")
LINK_HOURS = 24
SALT = "portail.consent.export"


@dataclass(frozen=True)
class ExportStatus:
    id: int
    status: str
    requested_at: dt.datetime
    ready_at: dt.datetime | None
    expires_at: dt.datetime | None
    size_bytes: int


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=SALT)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False)


def request_export(db: Session, member_id: int, *, ip_address: str = "") -> DataExport:
    """Ask for an export; a request already waiting or running is returned instead of a new one."""
    waiting = db.exec(
        select(DataExport).where(DataExport.member_id == member_id, col(DataExport.status).in_(("pending", "running")))
    ).first()
    if waiting is not None:
        return waiting
    row = DataExport(member_id=member_id)
    db.add(row)
    db.flush()
    audit(db, "privacy.export_requested", actor_id=member_id, member_id=member_id, ip_address=ip_address)
    return row


def latest(db: Session, member_id: int) -> ExportStatus | None:
    row = db.exec(
        select(DataExport).where(DataExport.member_id == member_id).order_by(col(DataExport.id).desc()).limit(1)
    ).first()
    if row is None:
        return None
    return ExportStatus(row.id or 0, row.status, row.requested_at, row.ready_at, row.expires_at, row.size_bytes)


def _claim(db: Session, export_id: int) -> int | None:
    """Mark a pending export running; returns its member, or None when another worker has it."""
    result = db.exec(
        update(DataExport)
        .where(col(DataExport.id) == export_id, col(DataExport.status) == "pending")
        .values(status="running", started_at=utcnow())
    )
    if result.rowcount != 1:
        return None
    row = db.get(DataExport, export_id)
    return row.member_id if row else None


def _store(db: Session, settings: Settings, export_id: int, base_url: str) -> None:
    row = db.get(DataExport, export_id)
    if row is None:
        return
    member = db.get(Member, row.member_id)
    if member is None:
        return
    document = dumps(archive.build(db, settings, row.member_id))
    now = utcnow()
    row.archive = document
    row.size_bytes = len(document.encode())
    row.status = "ready"
    row.ready_at = now
    row.expires_at = now + dt.timedelta(hours=LINK_HOURS)
    db.add(row)
    data_mail.tell(
        settings,
        member.email,
        "export_ready",
        member.locale,
        subject=N_("Vos données sont prêtes à télécharger"),
        name=member.name,
        link=f"{base_url}{download_path(settings, row, member)}",
        hours=LINK_HOURS,
    )


def _fail(db: Session, export_id: int, error: str) -> None:
    db.exec(update(DataExport).where(col(DataExport.id) == export_id).values(status="failed", error=error[:500]))


def run(database: Database, settings: Settings, export_id: int) -> bool:
    """Build one export if it is still pending (blocking: call it from a worker thread)."""
    if database.call(_claim, export_id) is None:
        return False
    try:
        database.call(_store, settings, export_id, settings.issuer)
    except Exception as exc:
        log.exception("export %s failed", export_id)
        database.call(_fail, export_id, type(exc).__name__)
        return False
    return True


def pending_ids(db: Session, *, stale_after: dt.timedelta = dt.timedelta(minutes=10)) -> list[int]:
    """Exports waiting to be built, and running ones abandoned by a worker that stopped."""
    now = utcnow()
    db.exec(
        update(DataExport)
        .where(col(DataExport.status) == "running", col(DataExport.started_at) < now - stale_after)
        .values(status="pending")
    )
    rows = db.exec(select(DataExport.id).where(DataExport.status == "pending").order_by(col(DataExport.id)).limit(20))
    return [i for i in rows if i is not None]


def expire(db: Session) -> int:
    """Drop archives past their lifetime (the request itself stays, for the member and the officer)."""
    result = db.exec(
        update(DataExport)
        .where(col(DataExport.status) == "ready", col(DataExport.expires_at) < utcnow())
        .values(status="expired", archive=None)
    )
    return int(result.rowcount or 0)


# ---------------------------------------------------------------- the signed link


def download_path(settings: Settings, row: DataExport, member: Member) -> str:
    token = _signer(settings).dumps({"e": row.id, "m": member.public_id})
    return f"/account/data/export/{token}"


def link_for(db: Session, settings: Settings, member_id: int, export_id: int) -> str | None:
    row = db.get(DataExport, export_id)
    member = db.get(Member, member_id)
    if row is None or member is None or row.member_id != member_id or row.status != "ready":
        return None
    return download_path(settings, row, member)


def open_link(db: Session, settings: Settings, token: str, member_id: int) -> tuple[str, str]:
    """The archive a link points to, for the member who opens it: ``(filename, JSON)``."""
    try:
        data = _signer(settings).loads(token, max_age=LINK_HOURS * 3600)
    except SignatureExpired as exc:
        raise ConsentError("Ce lien de téléchargement a expiré. Préparez une nouvelle archive.", status=410) from exc
    except BadSignature as exc:
        raise ConsentError("Ce lien de téléchargement est invalide.", status=400) from exc
    if not isinstance(data, dict) or not isinstance(data.get("e"), int) or not isinstance(data.get("m"), str):
        raise ConsentError("Ce lien de téléchargement est invalide.", status=400)
    member = db.get(Member, member_id)
    row = db.get(DataExport, data["e"])
    if member is None or member.public_id != data["m"] or row is None or row.member_id != member_id:
        raise ConsentError("Ce lien de téléchargement appartient à un autre compte.", status=403)
    if row.status != "ready" or row.archive is None or (row.expires_at and row.expires_at < utcnow()):
        raise ConsentError("Cette archive n’est plus disponible. Préparez-en une nouvelle.", status=410)
    audit(db, "privacy.export_downloaded", actor_id=member_id, member_id=member_id, subject_id=str(row.id))
    return f"portail-{utcnow().date().isoformat()}.json", row.archive


def export_now(db: Session, settings: Settings, member_id: int) -> str:
    """Build the document synchronously (``portail users export``), recording the request."""
    now = utcnow()
    db.add(DataExport(member_id=member_id, status="ready", channel="cli", started_at=now, ready_at=now))
    audit(db, "privacy.export_cli", member_id=member_id)
    return dumps(archive.build(db, settings, member_id))
