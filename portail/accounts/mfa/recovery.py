"""Recovery codes: ten single-use codes that stand in for a lost second factor.

They are shown once (at the first enrolment, or when the member generates new ones, which voids
the old ones) and stored as SHA-256: each carries 80 random bits, so a hash cannot be reversed by
trying them all. Using one says how many remain.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, update
from sqlmodel import Session, col, select

from portail.accounts.mfa.models import RecoveryCode
from portail.db import utcnow

COUNT = 10
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch.isalnum())


def _hash(code: str) -> str:
    return hashlib.sha256(f"portail.recovery:{_normalize(code)}".encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def generate(db: Session, member_id: int) -> list[str]:
    """Replace the member's codes with ten new ones; returns them in clear, to show once."""
    db.execute(delete(RecoveryCode).where(col(RecoveryCode.member_id) == member_id))  # type: ignore[call-overload]
    codes = [_new_code() for _ in range(COUNT)]
    for code in codes:
        db.add(RecoveryCode(member_id=member_id, code_hash=_hash(code)))
    db.flush()
    return codes


def remaining(db: Session, member_id: int) -> int:
    query = select(func.count()).where(RecoveryCode.member_id == member_id, col(RecoveryCode.used_at).is_(None))
    return int(db.exec(query).one())


def use(db: Session, member_id: int, code: str) -> int | None:
    """Consume ``code``; returns how many unused codes remain, or None when it is not a valid one."""
    normalized = _normalize(code)
    if len(normalized) != 16:
        return None
    row = db.exec(
        select(RecoveryCode).where(RecoveryCode.member_id == member_id, RecoveryCode.code_hash == _hash(normalized))
    ).first()
    if row is None or row.used_at is not None:
        return None
    claimed = update(RecoveryCode).where(col(RecoveryCode.id) == row.id, col(RecoveryCode.used_at).is_(None))
    result = cast(CursorResult[Any], db.execute(claimed.values(used_at=utcnow())))  # type: ignore[call-overload]
    if result.rowcount != 1:
        return None  # used concurrently
    return remaining(db, member_id)


def remove(db: Session, member_id: int) -> None:
    db.execute(delete(RecoveryCode).where(col(RecoveryCode.member_id) == member_id))  # type: ignore[call-overload]
