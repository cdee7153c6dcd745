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
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlmodel import Session

from portail import core_rows
from portail.accounts.current import Login
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import claims, client_cache, rows, tokens
from portail.oidc.authorization_request import AuthzRequest
from portail.oidc.models import AuthorizationCode, MemberUsername


def issue(db: Session, settings: Settings, req: AuthzRequest, login: Login) -> str:
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    acr = claims.acr_for(login.session.amr)  # always said: tools may demand MFA and must see what they got
    rows.run(  # Core, not an ORM flush: every logged-in /authorize writes one (rows.py)
        db,
        _INSERT,
        {
            "code_hash": tokens.hash_token(raw),
            "client_id": req.client.client_id,
            "member_id": login.member.id or 0,
            "sid": login.session.sid,
            "redirect_uri": req.redirect_uri,
            "scope": req.scope,
            "nonce": req.nonce,
            "code_challenge": req.code_challenge,
            "code_challenge_method": "S256" if req.code_challenge else None,
            "claims_request": req.claims_request,
            "acr": acr,
            "auth_time": login.session.auth_time,
            "amr": login.session.amr,
            "created_at": now,
            "expires_at": now + dt.timedelta(seconds=settings.authorization_code_seconds),
            "used_at": None,
            "grant_id": None,
        },
    )
    return raw


# Built once (hot path), run in Core on the unit of work's connection (``rows.py``: an ORM entity
# load or flush costs several times the statement). The member comes with the code so that the
# grant finds it without a query.
_code: Any = AuthorizationCode.__table__  # type: ignore[attr-defined]
_member: Any = Member.__table__  # type: ignore[attr-defined]
_INSERT = sa.insert(_code).values({column.name: bindparam(column.name) for column in _code.c if column.name != "id"})
_username: Any = MemberUsername.__table__  # type: ignore[attr-defined]
_BY_HASH = (
    sa.select(
        *core_rows.labelled(_code, "c_"),
        *core_rows.labelled(_member, "m_"),
        _username.c.username.label("username"),
        client_cache.VERSION.label("clients_version"),  # confirms a client taken on trust (client_cache)
    )
    .select_from(
        _code.outerjoin(_member, _member.c.id == _code.c.member_id).outerjoin(
            _username, _username.c.member_id == _code.c.member_id
        )
    )
    .where(_code.c.code_hash == bindparam("code_hash"))
)
_MARK_USED = (
    sa.update(_code)
    .where(_code.c.id == bindparam("code_id"), _code.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_SET_GRANT = sa.update(_code).where(_code.c.id == bindparam("code_id")).values(grant_id=bindparam("grant_id"))


def claim(db: Session, raw: str, client_id: str) -> AuthorizationCode | None:
    """The code, now marked used; None when unknown, another client's, expired or already used."""
    found = claim_with_member(db, raw, client_id)
    return found[0] if found is not None else None


def claim_with_member(db: Session, raw: str, client_id: str) -> tuple[AuthorizationCode, Member | None] | None:
    """``claim``, with the code's member (None if gone) read in the same query."""
    if not isinstance(raw, str) or len(raw) > 200:
        return None
    found = rows.run(db, _BY_HASH, {"code_hash": tokens.hash_token(raw)}).first()
    if found is None:
        return None
    client_cache.note_seen(db, found.clients_version)
    row = core_rows.detached(AuthorizationCode, found, "c_")
    assert row is not None
    if row.client_id != client_id:
        return None
    now = utcnow()
    if row.used_at is not None:
        if row.grant_id is not None:
            tokens.revoke_grant_ids(db, [row.grant_id], "code-reused")
        return None
    if row.expires_at <= now:
        return None
    if not rows.run(db, _MARK_USED, {"code_id": row.id, "now": now}).rowcount:
        return None  # exchanged concurrently
    row.used_at = now  # written by the UPDATE above (``row`` belongs to no session)
    member = core_rows.detached(Member, found, "m_")
    rows.remember_username(db, member.id if member is not None else None, found.username)
    return row, member


def record_grant(db: Session, code: AuthorizationCode, grant_id: int) -> None:
    """Remember the grant the code started (revoked if the code is presented again)."""
    rows.run(db, _SET_GRANT, {"code_id": code.id, "grant_id": grant_id})
    code.grant_id = grant_id
