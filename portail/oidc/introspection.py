"""Token introspection (RFC 7662) through authlib's ``IntrospectionEndpoint``, for authenticated
(confidential) clients only.

A client may introspect the tokens issued to it, and access tokens whose ``aud`` names it (a
resource server). Anything else, and any token that is expired, revoked, rotated, or whose grant,
client or member is no longer active, is ``{"active": false}`` (§2.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.models import TokenMixin
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import client_cache, client_endpoint, refresh, subjects, tokens
from portail.oidc.client_keys import RemoteKeys
from portail.oidc.clients import get_client
from portail.oidc.grants import CONFIDENTIAL_METHODS, build_server
from portail.oidc.models import Grant, RefreshToken
from portail.oidc.server import Answer, ClientAdapter, HttpInput


class ActiveAccess(TokenMixin):  # type: ignore[misc]
    def __init__(self, verified: tokens.VerifiedToken) -> None:
        self.verified = verified

    def allowed(self, client_id: str) -> bool:
        aud = self.verified.claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        return self.verified.client.client_id == client_id or client_id in audiences

    def is_expired(self) -> bool:
        return False  # checked by tokens.check_access_token

    def is_revoked(self) -> bool:
        return False

    def payload(self) -> dict[str, Any]:
        c = self.verified.claims
        keep = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "sid", "auth_time")
        return {"token_type": "Bearer", **{k: c[k] for k in keep if k in c}}


class RefreshState(TokenMixin):  # type: ignore[misc]
    def __init__(self, db: Session, settings: Settings, token: RefreshToken, grant: Grant) -> None:
        self.db, self.settings, self.token, self.grant = db, settings, token, grant

    def allowed(self, client_id: str) -> bool:
        return self.token.client_id == client_id

    def is_expired(self) -> bool:
        return self.token.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return not refresh.usable(self.token, self.grant, utcnow()) or self.token.rotated_at is not None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "token_type": "refresh_token",
            "scope": self.grant.scope,
            "client_id": self.token.client_id,
            "iss": self.settings.issuer,
            "iat": int(self.token.issued_at.timestamp()),
            "exp": int(self.token.expires_at.timestamp()),
        }
        member = self.db.get(Member, self.grant.member_id) if self.grant.member_id else None
        client = get_client(self.db, self.token.client_id)
        if member is not None and client is not None:
            body["sub"] = subjects.subject_for(self.db, self.settings.secret_key, member, client)
        return body


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> ActiveAccess | RefreshState | None:
        db, settings = self.server.db, self.server.settings
        if token_type_hint != "access_token" or token_string.count(".") != 2:  # noqa: S105
            found = refresh.find(db, token_string)
            if found is not None:
                return RefreshState(db, settings, *found)
        try:
            return ActiveAccess(tokens.check_access_token(db, settings, token_string))
        except tokens.InvalidToken:
            return None

    def check_permission(self, token: ActiveAccess | RefreshState, client: ClientAdapter, request: Any) -> bool:
        return token.allowed(client.client_id)

    def introspect_token(self, token: ActiveAccess | RefreshState) -> dict[str, Any]:
        return {"active": True, **token.payload()}


def introspect(
    db: Session, settings: Settings, inp: HttpInput, remote_keys: RemoteKeys | None = None, *, on_trust: bool = False
) -> Answer:
    if inp.repeated():
        return Answer(400, {"error": "invalid_request", "error_description": "A parameter is repeated"})
    server = build_server(db, settings, remote_keys)
    server.tentative = on_trust
    server.register_endpoint(Introspection)
    answer: Answer = server.create_endpoint_response(Introspection.ENDPOINT_NAME, inp)
    client_cache.confirm(db)  # the access-token check read the clients' version: no statement more
    return answer


async def introspection(request: Request) -> Response:
    return await client_endpoint.answer(request, introspect, autocommit=_reads_only, on_trust=_always)


def _always(_inp: HttpInput) -> bool:
    return True


def _reads_only(_inp: HttpInput) -> bool:
    """Introspection only reads (a ``private_key_jwt`` assertion's ``jti`` and a first pairwise
    subject are single inserts that stand on their own): no transaction (``Database.run_autocommit``)."""
    return True
