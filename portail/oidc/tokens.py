"""Tokens: JWT access tokens (RFC 9068), ID tokens (OIDC Core §2), opaque rotating refresh
tokens, and the public functions other packages call.

- Access tokens are JWTs with ``typ: at+jwt`` signed ES256 (RFC 9068 §2.1 leaves the algorithm
  free; ES256 signs seven times faster than RS256). ``aud`` is the client id plus the client's
  resource audiences, so that Nextcloud's bearer validation accepts them. ``gid`` names the grant
  they belong to, so that revoking a grant makes its access tokens fail ``verify_access_token``
  and introspection before they expire. ``cgen`` is the client's token generation at issuance:
  revoking everything a client holds increments it, so older tokens fail too (no clock involved).
- ID tokens are signed RS256 (OIDC Core §15.1) unless the client registered
  ``id_token_signed_response_alg: ES256``.
- Refresh tokens are 256-bit random strings stored as SHA-256; see ``refresh.py`` for rotation.

Public interface (other packages): ``verify_access_token``, ``InvalidToken``, ``revoke_grants``,
``revoke_client_tokens``; and ``keys.ring_of(db).sign`` for other JWTs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy import delete as sa_delete
from sqlmodel import Session, col, select

from portail.accounts.models import LoginSession, Member
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database, utcnow
from portail.oidc import client_cache, keys, rows
from portail.oidc.models import Grant, OAuthClient, RefreshToken, RevokedAccessToken

PURGE_SECONDS = 3600.0

ACCESS_TOKEN_ALG = "ES256"  # noqa: S105 - an algorithm name
AT_TYP = "at+jwt"
LEEWAY_SECONDS = 30
CLIENT_GENERATION = "cgen"  # private claim: OAuthClient.token_generation when the token was issued


class InvalidToken(Exception):
    """A bearer token that cannot be used: ``error`` is the RFC 6750 §3.1 code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def half_hash(value: str) -> str:
    """OIDC Core §3.1.3.6 ``at_hash``: base64url of the left half of SHA-256 (RS256/ES256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def audiences(client: OAuthClient) -> str | list[str]:
    extra = [a for a in client.resource_audiences if a != client.client_id]
    return [client.client_id, *extra] if extra else client.client_id


# ---------------------------------------------------------------- issuing


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_in: int


def issue_access_token(
    ring: keys.KeyRing,
    settings: Settings,
    client: OAuthClient,
    *,
    sub: str,
    scope: str,
    grant_id: int | None = None,
    sid: str | None = None,
    auth_time: dt.datetime | None = None,
    profile: Mapping[str, Any] | None = None,
) -> IssuedAccessToken:
    """A signed JWT access token (RFC 9068). ``profile``: member claims the audience needs in the token
    itself (e.g. the uid claim Nextcloud's ``user_oidc`` maps a bearer token to); protocol claims win."""
    now = int(time.time())
    lifetime = settings.access_token_minutes * 60
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        **(profile or {}),
        "iss": settings.issuer,
        "sub": sub,
        "aud": audiences(client),
        "client_id": client.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
        CLIENT_GENERATION: client.token_generation,
    }
    if grant_id is not None:
        claims["gid"] = grant_id
    if sid:
        claims["sid"] = sid
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    return IssuedAccessToken(ring.sign(claims, typ=AT_TYP, alg=ACCESS_TOKEN_ALG), jti, lifetime)


def issue_id_token(
    ring: keys.KeyRing,
    settings: Settings,
    client: OAuthClient,
    *,
    sub: str,
    auth_time: dt.datetime | None,
    profile: dict[str, Any],
    nonce: str | None = None,
    sid: str | None = None,
    amr: str = "",
    acr: str | None = None,
    access_token: str | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        **(profile or {}),
        "iss": settings.issuer,
        "sub": sub,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + settings.id_token_minutes * 60,
    }
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    if nonce:
        claims["nonce"] = nonce
    if sid:
        claims["sid"] = sid
    if amr:
        claims["amr"] = amr.split()
    if acr:
        claims["acr"] = acr
    if access_token:
        claims["at_hash"] = half_hash(access_token)
    claims.update(profile)
    alg = client.extra_metadata.get("id_token_signed_response_alg", "RS256")
    return ring.sign(claims, alg=alg if alg in keys.ALGORITHMS else "RS256")


def new_refresh_token(db: Session, settings: Settings, grant_id: int, client_id: str) -> str:
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    rows.run(
        db,
        rows.INSERT_REFRESH,
        {
            "token_hash": hash_token(raw),
            "grant_id": grant_id,
            "client_id": client_id,
            "issued_at": now,
            "expires_at": now + dt.timedelta(days=settings.refresh_token_days),
        },
    )
    return raw


# ---------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifiedToken:
    """A valid access token with what it designates (``grant`` and ``member`` are None for
    client-credentials tokens)."""

    claims: dict[str, Any]
    client: OAuthClient
    grant: Grant | None
    member: Member | None


def check_access_token(db: Session, settings: Settings, token: str) -> VerifiedToken:
    """Signature, ``typ``, ``iss``, ``exp``, then one query (grant not revoked, member active,
    ``jti`` not revoked, clients' version) and the client (cached): active and not revoked since."""
    try:
        header, claims = keys.ring_of(db).decode(token)
    except keys.BadSignature as exc:
        raise InvalidToken("invalid_token", "The access token is malformed or its signature is invalid") from exc
    if header.get("typ") != AT_TYP:
        raise InvalidToken("invalid_token", "Not an access token")
    now = time.time()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or exp + LEEWAY_SECONDS < now:
        raise InvalidToken("invalid_token", "The access token expired")
    if claims.get("iss") != settings.issuer:
        raise InvalidToken("invalid_token", "The access token was not issued here")
    client_id, jti, gid = claims.get("client_id"), claims.get("jti"), claims.get("gid")
    if not isinstance(client_id, str) or not isinstance(jti, str) or not (gid is None or isinstance(gid, int)):
        raise InvalidToken("invalid_token", "The access token lacks required claims")
    grant, member, jti_revoked, version = rows.access_token_state(db, client_id, jti, gid)
    client = client_cache.get_at(db, client_id, version)
    if client is None:
        raise InvalidToken("invalid_token", "The client of this token no longer exists")
    if not client.active or _revoked_with_client(client, claims, iat):
        raise InvalidToken("invalid_token", "The access token was revoked")
    if gid is not None and (grant is None or grant.revoked_at is not None or member is None or not member.active):
        raise InvalidToken("invalid_token", "The access token was revoked")
    if jti_revoked:
        raise InvalidToken("invalid_token", "The access token was revoked")
    return VerifiedToken(claims, client, grant, member)


def _revoked_with_client(client: OAuthClient, claims: Mapping[str, Any], iat: int) -> bool:
    """Whether all of the client's tokens were revoked since this one was issued: its generation is
    older than the client's. Tokens issued before ``cgen`` existed (one access-token lifetime after
    the upgrade, none are left) fall back to comparing times."""
    generation = claims.get(CLIENT_GENERATION)
    if generation is None:
        revoked_since = client.tokens_revoked_at
        return revoked_since is not None and iat <= revoked_since.timestamp()
    return not isinstance(generation, int) or isinstance(generation, bool) or generation < client.token_generation


def verify_access_token(
    db: Session, settings: Settings, token: str, *, required_scope: str | None = None
) -> dict[str, Any]:
    """The claims of a valid Portail access token, or ``InvalidToken`` (RFC 6750 §3.1 codes:
    ``invalid_token``, or ``insufficient_scope`` when ``required_scope`` is missing)."""
    verified = check_access_token(db, settings, token)
    if required_scope and required_scope not in str(verified.claims.get("scope", "")).split():
        raise InvalidToken("insufficient_scope", f"The access token lacks the scope {required_scope}")
    return verified.claims


# ---------------------------------------------------------------- revoking


def revoke_access_token(db: Session, jti: str, exp: int) -> None:
    if db.get(RevokedAccessToken, jti) is None:
        db.add(RevokedAccessToken(jti=jti, expires_at=dt.datetime.fromtimestamp(exp, dt.UTC)))


def purge_revoked(db: Session, now: dt.datetime, limit: int = 5000) -> int:
    """Forget revoked access tokens past their expiry (they are refused as expired anyway), oldest
    first and at most ``limit`` per call (index on ``expires_at``)."""
    table = RevokedAccessToken.__table__  # type: ignore[attr-defined]
    expired = select(col(RevokedAccessToken.jti)).where(col(RevokedAccessToken.expires_at) < now).limit(limit)
    result = cast(CursorResult[Any], db.execute(sa_delete(table).where(table.c.jti.in_(expired.scalar_subquery()))))
    return int(result.rowcount or 0)


def register_tasks(runner: Runner, db: Database) -> None:
    """Revoked access tokens past their expiry are purged every hour (a task of the background runner)."""

    async def purge() -> None:
        while await db.run(purge_revoked, utcnow()) == 5000:
            pass

    runner.add(Task("revoked-token-purge", purge, every=PURGE_SECONDS))


def revoke_grant_ids(db: Session, grant_ids: list[int], reason: str) -> int:
    """Revoke grants by id: their refresh tokens stop working, and so do their access tokens."""
    if not grant_ids:
        return 0
    now = utcnow()
    result = cast(
        CursorResult[Any],
        db.execute(  # type: ignore[call-overload]
            update(Grant)
            .where(col(Grant.id).in_(grant_ids), col(Grant.revoked_at).is_(None))
            .values(revoked_at=now, revoked_reason=reason[:60])
        ),
    )
    db.execute(  # type: ignore[call-overload]
        update(RefreshToken)
        .where(col(RefreshToken.grant_id).in_(grant_ids), col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


def revoke_grants(db: Session, *, client_id: str, member_id: int | None = None, reason: str) -> int:
    """Revoke every live grant of a client (of one member, or all): refresh tokens and grants are
    revoked and the grants' access tokens fail verification and introspection. Returns the count."""
    query = select(Grant.id).where(Grant.client_id == client_id, col(Grant.revoked_at).is_(None))
    if member_id is not None:
        query = query.where(Grant.member_id == member_id)
    return revoke_grant_ids(db, [g for g in db.exec(query) if g is not None], reason)


def revoke_client_tokens(db: Session, client_id: str, reason: str) -> int:
    """Revoke everything a client holds, including client-credentials access tokens."""
    client = db.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    if client is not None:
        client.tokens_revoked_at = utcnow()
        client.token_generation += 1
        db.add(client)
    return revoke_grants(db, client_id=client_id, reason=reason)


def on_session_end(db: Session, ended: list[LoginSession]) -> None:
    """``AccountExtensions.on_session_end`` hook: grants obtained in these sessions end with them,
    except ``offline_access`` ones, which outlive the Portail session."""
    sids = [s.sid for s in ended]
    if not sids:
        return
    ids = db.exec(
        select(Grant.id).where(col(Grant.sid).in_(sids), Grant.offline == False, col(Grant.revoked_at).is_(None))  # noqa: E712
    )
    revoke_grant_ids(db, [g for g in ids if g is not None], "session-ended")
