"""Token revocation (RFC 7009) through authlib's ``RevocationEndpoint``.

A client revokes its own tokens (public clients identify with ``client_id``, §2.1). Revoking a
refresh token revokes its whole grant, and so the access tokens issued from it (§2.1 "SHOULD also
invalidate all access tokens based on the same authorization grant"); revoking a JWT access token
records its ``jti`` until it expires. An unknown or already invalid token answers 200 (§2.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.models import TokenMixin
from authlib.oauth2.rfc7009 import RevocationEndpoint
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portail.config import Settings
from portail.oidc import client_endpoint, keys, refresh, tokens
from portail.oidc.client_keys import RemoteKeys
from portail.oidc.grants import ALL_METHODS, build_server
from portail.oidc.server import Answer, ClientAdapter, HttpInput


class RefreshRecord(TokenMixin):  # type: ignore[misc]
    kind = "refresh_token"

    def __init__(self, client_id: str, grant_id: int) -> None:
        self.client_id = client_id
        self.grant_id = grant_id

    def check_client(self, client: ClientAdapter) -> bool:
        return self.client_id == client.client_id


class AccessRecord(TokenMixin):  # type: ignore[misc]
    kind = "access_token"

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.client_id = claims.get("client_id")

    def check_client(self, client: ClientAdapter) -> bool:
        return self.client_id == client.client_id


def find_token(db: Session, value: str, hint: str | None) -> RefreshRecord | AccessRecord | None:
    """A refresh token by its hash, or a JWT access token signed here (even if already invalid)."""
    if hint != "access_token" or value.count(".") != 2:
        found = refresh.find(db, value)
        if found is not None:
            return RefreshRecord(found[0].client_id, found[1].id or 0)
    try:
        header, claims = keys.ring_of(db).decode(value)
    except keys.BadSignature:
        return None
    if header.get("typ") != tokens.AT_TYP or not isinstance(claims.get("jti"), str):
        return None
    return AccessRecord(claims)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ALL_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> RefreshRecord | AccessRecord | None:
        return find_token(self.server.db, token_string, token_type_hint)

    def revoke_token(self, token: RefreshRecord | AccessRecord, request: Any) -> None:
        db = self.server.db
        if isinstance(token, RefreshRecord):
            tokens.revoke_grant_ids(db, [token.grant_id], "revoked-by-client")
        else:
            exp = token.claims.get("exp")
            tokens.revoke_access_token(db, str(token.claims["jti"]), exp if isinstance(exp, int) else 0)


def revoke(
    db: Session, settings: Settings, inp: HttpInput, remote_keys: RemoteKeys | None = None, *, on_trust: bool = False
) -> Answer:
    """Revocation always reads its client strictly (``on_trust`` is not used: it is rare)."""
    if inp.repeated():
        return Answer(400, {"error": "invalid_request", "error_description": "A parameter is repeated"})
    server = build_server(db, settings, remote_keys)
    server.register_endpoint(Revocation)
    answer: Answer = server.create_endpoint_response(Revocation.ENDPOINT_NAME, inp)
    return answer


async def revocation(request: Request) -> Response:
    # not ``short``: revoking a refresh token may end a whole grant
    return await client_endpoint.answer(request, revoke, short=False)
