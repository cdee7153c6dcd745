"""Authorization codes (RFC 6749 §4.1.2): short-lived, single use, bound to the client, the
redirect URI and the PKCE challenge, stored as SHA-256.

RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server MUST
deny the request and SHOULD revoke (when possible) all tokens previously issued based on that
authorization code." ``claim`` marks a code used atomically (one conditional UPDATE, so two
concurrent exchanges cannot both succeed) and, on a second use, revokes the grant the first
exchange started.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from portail.accounts.current import Login
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import claims, tokens
from portail.oidc.authorization_request import AuthzRequest
from portail.oidc.models import AuthorizationCode


def issue(db: Session, settings: Settings, req: AuthzRequest, login: Login) -> str:
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    acr = claims.acr_for(login.session.amr)  # always said: tools may demand MFA and must see what they got
    db.add(
        AuthorizationCode(
            code_hash=tokens.hash_token(raw),
            client_id=req.client.client_id,
            member_id=login.member.id or 0,
            sid=login.session.sid,
            redirect_uri=req.redirect_uri,
            scope=req.scope,
            nonce=req.nonce,
            code_challenge=req.code_challenge,
            code_challenge_method="S256" if req.code_challenge else None,
            claims_request=req.claims_request,
            acr=acr,
            auth_time=login.session.auth_time,
            amr=login.session.amr,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.authorization_code_seconds),
        )
    )
    return raw


# Built once (hot path). The member comes with the code so that the grant finds it without a query.
_BY_HASH = (
    select(AuthorizationCode, Member)
    .outerjoin(Member, col(Member.id) == col(AuthorizationCode.member_id))
    .where(AuthorizationCode.code_hash == bindparam("code_hash"))
)
_MARK_USED = (
    update(AuthorizationCode)
    .where(col(AuthorizationCode.id) == bindparam("code_id"), col(AuthorizationCode.used_at).is_(None))
    .values(used_at=bindparam("now"))
)


def claim(db: Session, raw: str, client_id: str) -> AuthorizationCode | None:
    """The code, now marked used; None when unknown, another client's, expired or already used."""
    found = claim_with_member(db, raw, client_id)
    return found[0] if found is not None else None


def claim_with_member(db: Session, raw: str, client_id: str) -> tuple[AuthorizationCode, Member | None] | None:
    """``claim``, with the code's member (None if gone) read in the same query."""
    if not isinstance(raw, str) or len(raw) > 200:
        return None
    found = db.exec(_BY_HASH, params={"code_hash": tokens.hash_token(raw)}).first()
    if found is None:
        return None
    row, member = found
    if row.client_id != client_id:
        return None
    now = utcnow()
    if row.used_at is not None:
        if row.grant_id is not None:
            tokens.revoke_grant_ids(db, [row.grant_id], "code-reused")
        return None
    if row.expires_at <= now:
        return None
    result = cast(
        CursorResult[Any],
        db.execute(_MARK_USED, {"code_id": row.id, "now": now}),  # type: ignore[call-overload]
    )
    if not result.rowcount:
        return None  # exchanged concurrently
    set_committed_value(row, "used_at", now)  # already written by the UPDATE above
    return row, member
