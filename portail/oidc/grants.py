"""authlib grants and client authentication, wired to Portail's storage.

- ``CodeGrant``: RFC 6749 §4.1.3-4 with PKCE (RFC 7636 §4.6: S256 only; required when the client
  authenticates with ``none``; a ``code_verifier`` without a challenge is refused, RFC 9700 §4.8).
- ``RefreshGrant``: RFC 6749 §6, rotation and reuse detection in ``refresh.py``.
- ``ClientCredentials``: RFC 6749 §4.4, for instances calling Portail's APIs; API scopes only.
- Client authentication (RFC 6749 §2.3, OIDC Core §9): ``client_secret_basic`` and
  ``client_secret_post`` (both accepted for a secret client), ``private_key_jwt`` (RFC 7523 §3:
  ``iss = sub = client_id``, ``aud`` = the token endpoint or the issuer, ``exp`` required, ``jti``
  single use; the client's keys registered by value, ``jwks``, or by reference, ``jwks_uri``, fetched
  before the worker thread by ``client_keys.py``) and ``none`` for public clients. A failed
  authentication is 401 ``invalid_client``.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc6749.models import AuthorizationCodeMixin, TokenMixin
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import Session

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import assertions, claims, codes, extensions, issuance, refresh
from portail.oidc.client_keys import RemoteKeys
from portail.oidc.clients import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from portail.oidc.models import AuthorizationCode, Grant, RefreshToken
from portail.oidc.server import ClientAdapter, PortailServer

ALL_METHODS = list(AUTH_METHODS)  # authlib wants lists
CONFIDENTIAL_METHODS = list(CONFIDENTIAL_AUTH_METHODS)
TOKEN_PATHS = ("/token", "/introspect", "/revoke")


# ---------------------------------------------------------------- authorization code


class CodeRecord(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, row: AuthorizationCode, member: Member | None = None) -> None:
        self.row = row
        self.member = member
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class PkceS256(CodeChallenge):  # type: ignore[misc]
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    @property
    def db(self) -> Session:
        return self.server.db  # type: ignore[no-any-return]

    def query_authorization_code(self, code: str, client: ClientAdapter) -> CodeRecord | None:
        found = codes.claim_with_member(self.db, code, client.client_id)
        return CodeRecord(*found) if found is not None else None

    def authenticate_user(self, record: CodeRecord) -> Member | None:
        member = record.member
        return member if member is not None and member.active else None

    def generate_token(self, user: Member | None = None, include_refresh_token: bool = True, **_: Any) -> Any:
        record: CodeRecord = self.request.authorization_code
        assert user is not None
        return issuance.for_code(
            self.db, self.server.settings, self.client.row, user, record.row, with_refresh=include_refresh_token
        )

    def delete_authorization_code(self, record: CodeRecord) -> None:
        """Already marked used by ``codes.claim`` (atomically, before anything was issued)."""


# ---------------------------------------------------------------- refresh token


class RefreshRecord(TokenMixin):  # type: ignore[misc]
    def __init__(self, token: RefreshToken, grant: Grant, member: Member) -> None:
        self.token = token
        self.grant = grant
        self.member = member

    def check_client(self, client: ClientAdapter) -> bool:
        return self.token.client_id == client.client_id

    def get_scope(self) -> str:
        return self.grant.scope


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def db(self) -> Session:
        return self.server.db  # type: ignore[no-any-return]

    def authenticate_refresh_token(self, raw: str) -> RefreshRecord | None:
        """Checks first (nothing changes when they fail), then rotation (refresh.py)."""
        found = refresh.find_with_member(self.db, raw)
        if found is None:
            return None
        token, grant, member = found
        if token.client_id != self.request.client.client_id:
            return None
        if member is None or not member.active:
            return None
        requested = self.request.payload.scope
        if requested and not set(requested.split()) <= set(grant.scope.split()):
            raise InvalidScopeError()
        if not refresh.usable(token, grant, utcnow()):
            return None
        if not refresh.rotate(self.db, self.server.settings, token, grant):
            return None
        return RefreshRecord(token, grant, member)

    def _validate_token_scope(self, token: RefreshRecord) -> None:
        """Checked in ``authenticate_refresh_token``, before the token is consumed."""

    def authenticate_user(self, record: RefreshRecord) -> Member:
        return record.member

    def issue_token(self, user: Member, record: RefreshRecord) -> dict[str, Any]:
        scope = self.request.payload.scope or record.grant.scope
        return issuance.for_refresh(self.db, self.server.settings, self.client.row, user, record.grant, scope)

    def revoke_old_credential(self, record: RefreshRecord) -> None:
        """Already rotated by ``refresh.rotate``."""


# ---------------------------------------------------------------- client credentials


class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_requested_scope(self) -> None:
        requested = (self.request.payload.scope or "").split()
        allowed = set(self.client.row.scope.split()) - claims.MEMBER_SCOPES
        if not set(requested) <= allowed or not set(requested) <= set(self.server.scopes_supported or ()):
            raise InvalidScopeError()

    def generate_token(self, scope: str | None = None, **_: Any) -> Any:
        default = [s for s in self.client.row.scope.split() if s not in claims.MEMBER_SCOPES]
        granted = scope or " ".join(s for s in default if s in extensions.of(self.server.db).api_scopes)
        return issuance.for_client(self.server.db, self.server.settings, self.client.row, granted)


# ---------------------------------------------------------------- private_key_jwt


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: PortailServer, remote_keys: RemoteKeys | None = None) -> None:
        super().__init__(validate_jti=True, leeway=int(assertions.LEEWAY.total_seconds()))
        self.server = server
        self.remote_keys = remote_keys

    def get_audiences(self) -> list[str]:
        issuer = self.server.settings.issuer
        return [issuer, issuer + "/", *(issuer + path for path in TOKEN_PATHS)]

    def verify_claims(self, claims: Any) -> None:
        """RFC 7523 §3, plus Portail's cap on the assertion's lifetime (``assertions.MAX_LIFETIME``),
        checked before its ``jti`` is recorded."""
        problem = assertions.lifetime_problem(dict(claims), utcnow())
        if problem:
            raise InvalidClientError(description=problem)
        super().verify_claims(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            exp = (utcnow() + assertions.MAX_LIFETIME).timestamp()
        return assertions.record_use(self.server.db, str(claims.get("sub")), str(jti), float(exp))

    def resolve_client_public_key(self, client: ClientAdapter) -> KeySet:
        """The registered ``jwks``, else the key set ``client_keys.prefetch`` fetched from ``jwks_uri``."""
        row = client.row
        jwks: object = row.jwks
        if not jwks and row.jwks_uri:
            remote = self.remote_keys
            if remote is None or (remote.client_id, remote.jwks_uri) != (row.client_id, row.jwks_uri):
                raise InvalidClientError(description="The client's jwks_uri was not fetched")
            if remote.jwks is None:
                raise InvalidClientError(description=remote.error)
            jwks = remote.jwks
        if not jwks:
            raise InvalidClientError(description="The client has no registered jwks or jwks_uri")
        try:
            return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="The client's key set is unusable") from exc


def build_server(db: Session, settings: Settings, remote_keys: RemoteKeys | None = None) -> PortailServer:
    """authlib's server for one request: grants and client authentication methods (``remote_keys``:
    what ``client_keys.prefetch`` fetched for a ``private_key_jwt`` client with a ``jwks_uri``)."""
    server = PortailServer(db, settings, claims.scopes_supported(extensions.of(db).api_scopes))
    server.register_grant(CodeGrant, [PkceS256(required=True)])
    server.register_grant(RefreshGrant)
    server.register_grant(ClientCredentials)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT(server, remote_keys))
    return server
