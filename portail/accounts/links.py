"""Single-use links sent by mail (verification, password reset, email change).

A link carries ``<random token>`` signed and timestamped with itsdangerous; the database keeps the
token's SHA-256, its purpose, expiry and use, so a link works once, within its lifetime, for its
purpose only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, col, select, update

from portail.accounts.members import AccountError
from portail.accounts.models import Member, OneTimeLink
from portail.db import utcnow

PURPOSES = ("verify", "reset", "email-change")


def _signer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"portail.link.{purpose}")


def void(db: Session, member_id: int, purpose: str) -> None:
    """Make every unused link of ``purpose`` sent to the member stop working."""
    db.exec(
        update(OneTimeLink)
        .where(
            col(OneTimeLink.member_id) == member_id,
            col(OneTimeLink.purpose) == purpose,
            col(OneTimeLink.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )


def issue(
    db: Session,
    secret_key: str,
    member: Member,
    purpose: str,
    lifetime: dt.timedelta,
    new_email: str | None = None,
) -> str:
    """Create a link token for ``member``; earlier unused links of the same purpose stop working."""
    assert purpose in PURPOSES
    void(db, member.id or 0, purpose)
    raw = secrets.token_urlsafe(24)
    now = utcnow()
    db.add(
        OneTimeLink(
            token_hash=hashlib.sha256(raw.encode()).hexdigest(),
            purpose=purpose,
            member_id=member.id or 0,
            new_email=new_email,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    db.flush()
    return str(_signer(secret_key, purpose).dumps(raw))


def _find(db: Session, secret_key: str, purpose: str, token: str) -> OneTimeLink:
    try:
        raw = _signer(secret_key, purpose).loads(token)
    except SignatureExpired as exc:
        raise AccountError("Ce lien a expiré. Demandez-en un nouveau.") from exc
    except BadSignature as exc:
        raise AccountError("Ce lien est invalide.") from exc
    if not isinstance(raw, str):
        raise AccountError("Ce lien est invalide.")
    row = db.exec(select(OneTimeLink).where(OneTimeLink.token_hash == hashlib.sha256(raw.encode()).hexdigest())).first()
    if row is None or row.purpose != purpose:
        raise AccountError("Ce lien est invalide.")
    if row.used_at is not None:
        raise AccountError("Ce lien a déjà été utilisé.")
    if row.expires_at < utcnow():
        raise AccountError("Ce lien a expiré. Demandez-en un nouveau.")
    return row


def peek(db: Session, secret_key: str, purpose: str, token: str) -> OneTimeLink:
    """Check a link without using it (to show a form); raises ``AccountError``."""
    return _find(db, secret_key, purpose, token)


def consume(db: Session, secret_key: str, purpose: str, token: str) -> OneTimeLink:
    """Use a link once; a concurrent second use loses the race and is refused."""
    row = _find(db, secret_key, purpose, token)
    result = db.exec(
        update(OneTimeLink)
        .where(col(OneTimeLink.id) == row.id, col(OneTimeLink.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if result.rowcount != 1:
        raise AccountError("Ce lien a déjà été utilisé.")
    return row


def pending_email_change(db: Session, member_id: int) -> str | None:
    """The address a member asked to move to and has not confirmed yet (the newest live link), if any."""
    row = db.exec(
        select(OneTimeLink)
        .where(OneTimeLink.member_id == member_id, OneTimeLink.purpose == "email-change")
        .where(col(OneTimeLink.used_at).is_(None), OneTimeLink.expires_at > utcnow())
        .order_by(col(OneTimeLink.created_at).desc())
        .limit(1)
    ).first()
    return row.new_email if row else None
