"""Single-use links sent by mail (verification, password reset, email change).

A link carries ``<random token>`` signed and timestamped with itsdangerous; the database keeps the
token's SHA-256, its purpose, expiry and use, so a link works once, within its lifetime, for its
purpose only.

A link that stopped working keeps *why* (``end_reason``): it was used, or a newer link of the same
purpose replaced it (asking twice for a reset, correcting the address). A refused link raises
``LinkError`` with that reason, so the page tells the truth ("a newer link was sent", not "already
used") and offers the right next step.
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
from portail.web import N_

PURPOSES = ("verify", "reset", "email-change")
USED, SUPERSEDED = "used", "superseded"  # OneTimeLink.end_reason
REASONS = ("invalid", "expired", USED, SUPERSEDED, "confirmed")  # why LinkError refused a link

_MESSAGES = {
    "invalid": N_("Ce lien est invalide ou incomplet."),
    "expired": N_("Ce lien a expiré."),
    USED: N_("Ce lien a déjà servi."),
    SUPERSEDED: N_("Un lien plus récent vous a été envoyé : celui-ci ne fonctionne plus."),
    "confirmed": N_("Votre adresse courriel est déjà confirmée."),
}


class LinkError(AccountError):
    """A link that does not work, and why: ``reason`` is one of ``REASONS``; ``purpose`` is the link's."""

    def __init__(self, reason: str, purpose: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.purpose = purpose


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
        .values(used_at=utcnow(), end_reason=SUPERSEDED)
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


def _row(db: Session, raw: str) -> OneTimeLink | None:
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return db.exec(select(OneTimeLink).where(OneTimeLink.token_hash == digest)).first()


def lookup(db: Session, secret_key: str, purpose: str, token: str) -> OneTimeLink | None:
    """The row of a correctly signed link of ``purpose``, working or not (to say what happened to it)."""
    try:
        raw = _signer(secret_key, purpose).loads(token)
    except BadSignature:
        return None
    row = _row(db, raw) if isinstance(raw, str) else None
    return row if row is not None and row.purpose == purpose else None


def _find(db: Session, secret_key: str, purpose: str, token: str) -> OneTimeLink:
    try:
        raw = _signer(secret_key, purpose).loads(token)
    except SignatureExpired as exc:
        raise LinkError("expired", purpose) from exc
    except BadSignature as exc:
        raise LinkError("invalid", purpose) from exc
    if not isinstance(raw, str):
        raise LinkError("invalid", purpose)
    row = _row(db, raw)
    if row is None or row.purpose != purpose:
        raise LinkError("invalid", purpose)
    if row.used_at is not None:
        # Rows ended before end_reason existed say nothing: "used" would be a guess.
        raise LinkError(row.end_reason if row.end_reason in (USED, SUPERSEDED) else "invalid", purpose)
    if row.expires_at < utcnow():
        raise LinkError("expired", purpose)
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
        .values(used_at=utcnow(), end_reason=USED)
    )
    if result.rowcount != 1:
        raise LinkError(USED, purpose)
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
