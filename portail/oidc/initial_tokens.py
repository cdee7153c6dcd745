"""Initial access tokens for dynamic client registration (RFC 7591 §1.2 and §3).

An administrator creates one with ``portail clients initial-token [--expires 7d] [--uses N]``; the
token is printed once and stored as its SHA-256. Each registration consumes one use atomically
(a conditional ``UPDATE``), so two concurrent registrations cannot both spend the last use.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from portail.db import utcnow
from portail.oidc.clients import hash_secret
from portail.oidc.models import InitialAccessToken

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90m``, ``12h``, ``7d``, ``2w`` → a duration; ``ValueError`` otherwise."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(text)
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def create(
    db: Session, *, expires_in: dt.timedelta | None = None, uses: int | None = None, note: str = ""
) -> tuple[str, InitialAccessToken]:
    """A new token (clear text, shown once) and its row."""
    if uses is not None and uses < 1:
        raise ValueError("uses")
    token = secrets.token_urlsafe(32)
    row = InitialAccessToken(
        token_hash=hash_secret(token),
        expires_at=utcnow() + expires_in if expires_in else None,
        uses_left=uses,
        note=note[:200],
    )
    db.add(row)
    db.flush()
    return token, row


def consume(db: Session, token: str, now: dt.datetime | None = None) -> bool:
    """Spend one use of a valid token; ``False`` when unknown, expired or used up."""
    if not token:
        return False
    now = now or utcnow()
    row = db.exec(select(InitialAccessToken).where(InitialAccessToken.token_hash == hash_secret(token))).first()
    if row is None:
        return False
    result = db.execute(
        update(InitialAccessToken)
        .where(
            col(InitialAccessToken.id) == row.id,
            or_(col(InitialAccessToken.expires_at).is_(None), col(InitialAccessToken.expires_at) > now),
            or_(col(InitialAccessToken.uses_left).is_(None), col(InitialAccessToken.uses_left) > 0),
        )
        .values(
            uses_left=col(InitialAccessToken.uses_left) - 1,
        )
    )
    return getattr(result, "rowcount", 0) == 1


def list_tokens(db: Session) -> list[InitialAccessToken]:
    return list(db.exec(select(InitialAccessToken).order_by(col(InitialAccessToken.id))))
