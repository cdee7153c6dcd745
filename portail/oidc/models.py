"""Tables of the OpenID Connect provider.

Clients, authorization codes, grants (one per consented login of a client, the family of its
refresh tokens), refresh tokens (hashed), revoked access-token ids, consents and their immutable
ledger, the clients each login session handed tokens to (for back-channel logout), back-channel
deliveries, signing keys, initial access tokens for dynamic registration, and the data-access log.
Consent state lives here, below the ``consent`` package, because the provider must write it when a
member clicks "allow"; ``portail.consent`` reads and withdraws it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portail.db import utcnow
from portail.outbox import DeliveryColumns


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(default), sa_column=Column(JSON, nullable=False))


class OAuthClient(SQLModel, table=True):
    __tablename__ = "oauth_client"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=100, unique=True, index=True)
    client_secret_hash: str | None = Field(default=None, max_length=255)  # None for public clients
    name: str = Field(max_length=200)
    redirect_uris: list[str] = _json([])
    post_logout_redirect_uris: list[str] = _json([])
    backchannel_logout_uri: str | None = Field(default=None, max_length=1000)
    backchannel_logout_session_required: bool = Field(default=True)
    grant_types: list[str] = _json(["authorization_code", "refresh_token"])
    response_types: list[str] = _json(["code"])
    scope: str = Field(default="openid profile email groups offline_access", max_length=1000)
    token_endpoint_auth_method: str = Field(default="client_secret_basic", max_length=40)
    subject_type: str = Field(default="pairwise", max_length=10)  # public | pairwise
    sector_identifier: str = Field(default="", max_length=255)  # host used for pairwise subjects
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # private_key_jwt
    jwks_uri: str | None = Field(default=None, max_length=1000)
    resource_audiences: list[str] = _json([])  # extra `aud` values of access tokens
    trusted: bool = Field(default=False)  # first-party: consent page skipped (consent still recorded)
    client_uri: str | None = Field(default=None, max_length=1000)
    logo_uri: str | None = Field(default=None, max_length=1000)
    contacts: list[str] = _json([])
    extra_metadata: dict[str, Any] = _json({})  # other RFC 7591 metadata echoed back
    registration_access_token_hash: str | None = Field(default=None, max_length=64)
    registered_dynamically: bool = Field(default=False)
    created_at: dt.datetime = Field(default_factory=utcnow)
    secret_rotated_at: dt.datetime | None = None
    # after a rotation with a grace period, the previous secret keeps working until then
    previous_secret_hash: str | None = Field(default=None, max_length=255)
    previous_secret_expires_at: dt.datetime | None = None
    disabled_at: dt.datetime | None = None  # a disabled client can neither log members in nor get tokens
    tokens_revoked_at: dt.datetime | None = None  # when all its tokens were last revoked (shown; legacy check)
    # Access tokens carry the generation they were issued under (claim ``cgen``); revoking all the
    # client's tokens increments it. A counter, not a time: node clocks may disagree (oidc_0004).
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    @property
    def is_public(self) -> bool:
        return self.client_secret_hash is None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class OAuthClientVersion(SQLModel, table=True):
    """One row (``id = 1``) whose ``version`` database triggers bump on every change to
    ``oauth_client`` (migration ``oidc_0003``): how every process knows its cached clients are
    stale (``client_cache.py``)."""

    __tablename__ = "oauth_client_version"

    id: int = Field(primary_key=True)
    version: int = Field(default=0)


class AuthorizationCode(SQLModel, table=True):
    __tablename__ = "authorization_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True, index=True)
    client_id: str = Field(max_length=100, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    sid: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=1000)
    scope: str = Field(max_length=1000)
    nonce: str | None = Field(default=None, max_length=512)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=10)
    claims_request: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    acr: str | None = Field(default=None, max_length=100)
    auth_time: dt.datetime
    amr: str = Field(default="pwd", max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    used_at: dt.datetime | None = None
    grant_id: int | None = Field(default=None, index=True)  # set at exchange; revoked on code reuse


class Grant(SQLModel, table=True):
    """What one code exchange (or client-credentials request) started: the refresh-token family."""

    __tablename__ = "oauth_grant"
    __table_args__ = (Index("ix_oauth_grant_member_client", "member_id", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=100, index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")  # None for client_credentials
    sid: str | None = Field(default=None, max_length=64, index=True)
    scope: str = Field(max_length=1000)
    claims_request: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    auth_time: dt.datetime | None = None
    amr: str = Field(default="", max_length=100)
    offline: bool = Field(default=False)  # offline_access: outlives the login session
    created_at: dt.datetime = Field(default_factory=utcnow)
    revoked_at: dt.datetime | None = None
    revoked_reason: str = Field(default="", max_length=60)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    grant_id: int = Field(foreign_key="oauth_grant.id", index=True)
    client_id: str = Field(max_length=100)
    issued_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    rotated_at: dt.datetime | None = None  # used once: a new token replaced it
    revoked_at: dt.datetime | None = None


class RevokedAccessToken(SQLModel, table=True):
    """JWT access tokens revoked before expiry (RFC 7009); rows are purged after ``expires_at``."""

    __tablename__ = "revoked_access_token"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: dt.datetime = Field(index=True)


class Consent(SQLModel, table=True):
    """The current consent of a member for a client: scopes, claims, privacy-policy version."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("member_id", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    client_id: str = Field(max_length=100, index=True)
    scopes: str = Field(max_length=1000)
    claims: list[str] = _json([])
    policy_version: str = Field(max_length=40)
    granted_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    withdrawn_at: dt.datetime | None = None
    implicit: bool = Field(default=False)  # recorded for a trusted instance without showing the page


class ConsentEvent(SQLModel, table=True):
    """Immutable ledger of consent: every grant, change and withdrawal (Law 25)."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int | None = Field(default=None, index=True)  # kept (nulled) after account purge
    client_id: str = Field(max_length=100)
    purpose: str = Field(default="", max_length=100)  # "" = the client's login consent; else an optional purpose
    action: str = Field(max_length=20)  # granted | extended | renewed | withdrawn | denied
    scopes: str = Field(default="", max_length=1000)
    policy_version: str = Field(default="", max_length=40)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class SessionClient(SQLModel, table=True):
    """A client that received tokens within a login session: who to tell at logout."""

    __tablename__ = "session_client"
    __table_args__ = (UniqueConstraint("sid", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    sid: str = Field(max_length=64, index=True)
    client_id: str = Field(max_length=100)
    member_id: int = Field(foreign_key="member.id", index=True)
    first_at: dt.datetime = Field(default_factory=utcnow)
    last_at: dt.datetime = Field(default_factory=utcnow)


class BackchannelDelivery(DeliveryColumns, table=True):
    """One back-channel logout token to deliver to one client, with retries (``portail.outbox``)."""

    __tablename__ = "backchannel_delivery"
    __table_args__ = (Index("ix_backchannel_due", "status", "next_attempt_at"),)

    sid: str = Field(max_length=64)
    subject: str = Field(max_length=255)  # the `sub` this client knows


class SigningKey(SQLModel, table=True):
    """A JOSE signing key. The private JWK is encrypted at rest (Fernet, key derived from the secret key)."""

    __tablename__ = "signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    alg: str = Field(max_length=10)  # RS256 | ES256
    public_jwk: dict[str, Any] = _json({})
    private_jwk_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)
    activates_at: dt.datetime | None = None  # signs from then on (None: from creation)
    retired_at: dt.datetime | None = None  # no longer signs
    unpublish_after: dt.datetime | None = None  # public key dropped from the JWKS after this


class InitialAccessToken(SQLModel, table=True):
    """Bearer token allowing dynamic client registration (RFC 7591 §3)."""

    __tablename__ = "initial_access_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime | None = None
    uses_left: int | None = None  # None = unlimited
    note: str = Field(default="", max_length=200)


class DataAccess(SQLModel, table=True):
    """Who accessed a member's data: token issuances and userinfo calls per client and day (Law 25)."""

    __tablename__ = "data_access"
    __table_args__ = (UniqueConstraint("member_id", "client_id", "kind", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    client_id: str = Field(max_length=100)
    kind: str = Field(max_length=20)  # token | userinfo
    day: dt.date
    count: int = Field(default=0)
    first_at: dt.datetime = Field(default_factory=utcnow)
    last_at: dt.datetime = Field(default_factory=utcnow)
    scopes: str = Field(default="", max_length=1000)


class ParkedRequest(SQLModel, table=True):
    """An ``/authorize`` request parked while the member logs in or consents (see interaction.py)."""

    __tablename__ = "authorization_request"

    id: str = Field(primary_key=True, max_length=64)  # random, appears in /authorize/resume/{id}
    client_id: str = Field(max_length=100)
    params: dict[str, str] = _json({})  # the validated request parameters, one value each
    login_after: dt.datetime | None = None  # the member must have authenticated at or after this
    consent_forced: bool = Field(default=False)  # prompt=consent: show the page even if remembered
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime = Field(index=True)


class PairwiseSubject(SQLModel, table=True):
    """The pairwise ``sub`` given to one sector for one member, written on first issuance."""

    __tablename__ = "pairwise_subject"
    __table_args__ = (UniqueConstraint("sector", "sub"), UniqueConstraint("sector", "member_id"))

    id: int | None = Field(default=None, primary_key=True)
    sector: str = Field(max_length=255)
    sub: str = Field(max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow)


class MemberUsername(SQLModel, table=True):
    """The stable ``preferred_username`` of a member (a Matrix-safe localpart), chosen on first issuance."""

    __tablename__ = "member_username"

    member_id: int = Field(primary_key=True, foreign_key="member.id")
    username: str = Field(max_length=64, unique=True, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow)


class ClientAssertion(SQLModel, table=True):
    """``jti`` of JWT client assertions already used (RFC 7523 §3 item 7); purged after expiry."""

    __tablename__ = "client_assertion"

    jti_hash: str = Field(primary_key=True, max_length=64)  # sha256(client_id + jti)
    expires_at: dt.datetime = Field(index=True)
