"""What a successful token request hands out (RFC 6749 §5.1, OIDC Core §3.1.3.3, §12.2), and what it
records in the same transaction: the grant, the refresh token (hashed), the session's clients and
the data-access counters.

- Code exchange: a new grant (the family of refresh tokens) bound to the login session (``sid``);
  a refresh token when the client may use the ``refresh_token`` grant; an ID token when ``openid``
  was granted; ``offline_access`` makes the grant outlive the Portail session.
- Refresh: same grant, a new access token, refresh token and ID token (without ``nonce``, with the
  original ``auth_time``); the scope may be narrowed.
- Client credentials: an access token whose ``sub`` is the client itself; no grant, no refresh.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from portail import core_rows
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import claims, codes, keys, rows, subjects, tokens, usage
from portail.oidc.models import AuthorizationCode, Grant, OAuthClient


def for_code(
    db: Session, settings: Settings, client: OAuthClient, member: Member, code: AuthorizationCode, *, with_refresh: bool
) -> dict[str, Any]:
    # Core, not an ORM flush (rows.py): every code exchange starts a grant.
    values: dict[str, Any] = {
        "client_id": client.client_id,
        "member_id": member.id,
        "sid": code.sid,
        "scope": code.scope,
        "claims_request": code.claims_request,
        "auth_time": code.auth_time,
        "amr": code.amr,
        "offline": "offline_access" in code.scope.split(),
        "created_at": utcnow(),
        "revoked_at": None,
        "revoked_reason": "",
    }
    values["id"] = rows.run(db, rows.INSERT_GRANT, values).inserted_primary_key[0]
    grant = core_rows.built(Grant, values)
    codes.record_grant(db, code, grant.id or 0)
    usage.record_session_client(db, code.sid, client.client_id, member.id or 0)
    return _member_tokens(
        db, settings, client, member, grant, grant.scope, nonce=code.nonce, acr=code.acr, with_refresh=with_refresh
    )


def for_refresh(
    db: Session, settings: Settings, client: OAuthClient, member: Member, grant: Grant, scope: str
) -> dict[str, Any]:
    acr = claims.acr_for(grant.amr)
    return _member_tokens(db, settings, client, member, grant, scope, nonce=None, acr=acr, with_refresh=True)


def for_client(db: Session, settings: Settings, client: OAuthClient, scope: str) -> dict[str, Any]:
    issued = tokens.issue_access_token(keys.ring_of(db), settings, client, sub=client.client_id, scope=scope)
    return {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.expires_in, "scope": scope}


def _member_tokens(
    db: Session,
    settings: Settings,
    client: OAuthClient,
    member: Member,
    grant: Grant,
    scope: str,
    *,
    nonce: str | None,
    acr: str | None,
    with_refresh: bool,
) -> dict[str, Any]:
    sub = subjects.subject_for(db, settings.secret_key, member, client)
    ring = keys.ring_of(db)
    issued = tokens.issue_access_token(
        ring, settings, client, sub=sub, scope=scope, grant_id=grant.id, sid=grant.sid, auth_time=grant.auth_time
    )
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": scope,
    }
    if with_refresh:
        body["refresh_token"] = tokens.new_refresh_token(db, settings, grant.id or 0, client.client_id)
    if "openid" in scope.split():
        profile = claims.profile_values(db, member, client, claims.released(scope, grant.claims_request, "id_token"))
        body["id_token"] = tokens.issue_id_token(
            ring,
            settings,
            client,
            sub=sub,
            auth_time=grant.auth_time,
            profile=profile,
            nonce=nonce,
            sid=grant.sid,
            amr=grant.amr,
            acr=acr,
            access_token=issued.token,
        )
    usage.count_access(db, settings, member.id or 0, client.client_id, "token", scope)
    return body
