"""Refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2): rotated on every use, reuse detected.

- Every successful use marks the token ``rotated_at`` (one conditional UPDATE) and issues a new
  one in the same grant.
- Presenting a token that was already rotated is a reuse: the whole grant is revoked (its refresh
  tokens and, through ``gid``, its access tokens) and the answer is ``invalid_grant``…
- …except within ``refresh_reuse_grace_seconds`` of its rotation, for tools that refresh from
  several tabs at once: the same client then gets a **fresh** access token and refresh token and
  nothing is revoked (both successors stay valid; the raw successor cannot be returned again since
  only its hash is stored). A reuse after the window revokes the grant as above.
- A token presented by another client is refused with ``invalid_grant`` and changes nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from portail.accounts.members import audit
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import database_clock, utcnow
from portail.oidc import rows, tokens
from portail.oidc.models import Grant, RefreshToken


def find_with_member(db: Session, raw: str) -> tuple[RefreshToken, Grant, Member | None] | None:
    """The refresh token, its grant and the grant's member (None if gone), in one query."""
    if not isinstance(raw, str) or not raw or len(raw) > 200:
        return None
    return rows.refresh_with_grant(db, tokens.hash_token(raw))


def find(db: Session, raw: str) -> tuple[RefreshToken, Grant] | None:
    found = find_with_member(db, raw)
    return (found[0], found[1]) if found is not None else None


def usable(token: RefreshToken, grant: Grant, now: dt.datetime) -> bool:
    return grant.revoked_at is None and token.revoked_at is None and token.expires_at > now


def rotate(db: Session, settings: Settings, token: RefreshToken, grant: Grant) -> bool:
    """Consume ``token``; True when a new pair may be issued, False when it was a reuse outside
    the grace window (the grant is then revoked)."""
    if token.rotated_at is None:
        if db.get_bind().dialect.name == "postgresql":
            rotated = rows.run(db, rows.ROTATE_REFRESH_SERVER_CLOCK, {"token_id": token.id})
        else:
            rotated = rows.run(db, rows.ROTATE_REFRESH, {"token_id": token.id, "now": utcnow()})
        if rotated.rowcount:
            return True
        # rotated concurrently, a moment ago
        token.rotated_at = rows.run(db, rows.ROTATED_AT, {"token_id": token.id}).scalar()
    now = database_clock(db)  # the clock the rotation was stamped with (a reuse: off the hot path)
    rotated_at = token.rotated_at or now
    if (now - rotated_at).total_seconds() <= settings.refresh_reuse_grace_seconds:
        return True
    tokens.revoke_grant_ids(db, [grant.id or 0], "refresh-token-reused")
    audit(
        db,
        "oidc.refresh_token_reused",
        member_id=grant.member_id,
        subject_type="oauth_grant",
        subject_id=str(grant.id),
        reason=f"client {grant.client_id}: a rotated refresh token was presented again; grant revoked",
    )
    return False
