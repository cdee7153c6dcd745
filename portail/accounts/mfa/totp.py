"""Authenticator apps: time-based one-time passwords (RFC 6238, with ``pyotp``).

Enrolment is two steps: ``start`` creates an unconfirmed secret (replacing any half-finished one)
and gives its ``otpauth://`` URI, shown as a QR code drawn here as SVG (``segno``, no external
service) and as text; ``confirm`` accepts the first code and only then makes it a factor. A code is
accepted for the current 30-second step or the one before or after (clock drift), and **once**:
the last accepted step is stored, so a code (or an older one) cannot be replayed (RFC 6238 §5.2).
Secrets are kept encrypted with a key derived from the ``secret_key`` setting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from typing import Any, cast

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import CursorResult, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from portail.accounts.members import AccountError
from portail.accounts.mfa.models import TotpSecret
from portail.accounts.models import Member
from portail.db import utcnow

ISSUER_NAME = "En commun"
DRIFT_STEPS = 1


def _cipher(secret_key: str) -> Fernet:
    key = hashlib.sha256(f"portail.mfa.totp:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(secret_key: str, secret: str) -> str:
    return _cipher(secret_key).encrypt(secret.encode()).decode()


def _open(secret_key: str, sealed: str) -> str:
    try:
        return _cipher(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise AccountError("Votre application d’authentification doit être configurée à nouveau.") from exc


def confirmed(db: Session, member_id: int) -> TotpSecret | None:
    return db.exec(
        select(TotpSecret).where(TotpSecret.member_id == member_id, col(TotpSecret.confirmed_at).is_not(None))
    ).first()


def pending(db: Session, member_id: int) -> TotpSecret | None:
    return db.exec(
        select(TotpSecret).where(TotpSecret.member_id == member_id, col(TotpSecret.confirmed_at).is_(None))
    ).first()


def provisioning_uri(secret: str, member: Member) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=member.email, issuer_name=ISSUER_NAME)


def display_key(secret: str) -> str:
    """The key as a person types it: groups of four (apps ignore the spaces)."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an inline SVG document (no XML declaration)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", xmldecl=False, scale=4, border=2, svgns=True)
    return buffer.getvalue().decode()


def start(db: Session, secret_key: str, member: Member) -> str:
    """Begin (or begin again) enrolment; returns the new plain secret (base32) to show."""
    if confirmed(db, member.id or 0) is not None:
        raise AccountError("Une application d’authentification est déjà configurée.")
    old = pending(db, member.id or 0)
    if old is not None:
        db.delete(old)
    secret = pyotp.random_base32()
    db.add(TotpSecret(member_id=member.id or 0, secret=_seal(secret_key, secret)))
    db.flush()
    return secret


def pending_secret(db: Session, secret_key: str, member_id: int) -> str | None:
    row = pending(db, member_id)
    return _open(secret_key, row.secret) if row is not None else None


def _match(row: TotpSecret, secret: str, code: str) -> int | None:
    """The time step ``code`` belongs to (near now), when it is newer than the last one accepted."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    otp = pyotp.TOTP(secret)
    now_step = otp.timecode(utcnow())
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(otp.generate_otp(step), code) and step > row.last_counter:
            return step
    return None


def _accept(db: Session, row: TotpSecret, secret: str, code: str) -> bool:
    """Consume ``code``: one conditional UPDATE, so two concurrent submissions cannot both pass."""
    step = _match(row, secret, code)
    if step is None:
        return False
    now = utcnow()
    claimed = update(TotpSecret).where(col(TotpSecret.id) == row.id, col(TotpSecret.last_counter) < step)
    result = cast(CursorResult[Any], db.execute(claimed.values(last_counter=step, last_used_at=now)))  # type: ignore[call-overload]
    if result.rowcount != 1:
        return False
    set_committed_value(row, "last_counter", step)
    set_committed_value(row, "last_used_at", now)
    return True


def confirm(db: Session, secret_key: str, member: Member, code: str) -> None:
    """Turn the pending secret into a factor when ``code`` is right; refuse otherwise (nothing saved)."""
    row = pending(db, member.id or 0)
    if row is None:
        raise AccountError("Recommencez la configuration : elle a expiré ou a déjà été confirmée.")
    if not _accept(db, row, _open(secret_key, row.secret), code):
        raise AccountError("Ce code est incorrect ou expiré. Entrez le code affiché maintenant par l’application.")
    row.confirmed_at = utcnow()
    db.add(row)


def verify(db: Session, secret_key: str, member_id: int, code: str) -> bool:
    """Check a code at login or step-up; a right code is consumed (never accepted twice)."""
    row = confirmed(db, member_id)
    return row is not None and _accept(db, row, _open(secret_key, row.secret), code)


def remove(db: Session, member_id: int) -> bool:
    rows = list(db.exec(select(TotpSecret).where(TotpSecret.member_id == member_id)))
    for row in rows:
        db.delete(row)
    return bool(rows)
