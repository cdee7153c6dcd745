"""Tables of the second factors: authenticator-app secrets, recovery codes, passkeys (WebAuthn
credentials) and the single-use WebAuthn challenges."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from portail.db import utcnow


class TotpSecret(SQLModel, table=True):
    """A member's authenticator app (RFC 6238). ``confirmed_at`` is None while enrolment is half-done."""

    __tablename__ = "mfa_totp"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    secret: str = Field(sa_column=Column(Text, nullable=False))  # encrypted with a key derived from secret_key
    created_at: dt.datetime = Field(default_factory=utcnow)
    confirmed_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    last_counter: int = Field(default=0)  # the last accepted time step: a code is accepted once


class RecoveryCode(SQLModel, table=True):
    """One single-use recovery code, stored as SHA-256 (each has 80 random bits)."""

    __tablename__ = "mfa_recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    used_at: dt.datetime | None = None


class Passkey(SQLModel, table=True):
    """A WebAuthn credential (passkey or security key) registered by a member."""

    __tablename__ = "mfa_passkey"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    credential_id: str = Field(max_length=1400, unique=True, index=True)  # base64url
    public_key: str = Field(sa_column=Column(Text, nullable=False))  # COSE key, base64url
    user_handle: str = Field(max_length=128)  # base64url of the WebAuthn user.id given at registration
    sign_count: int = Field(default=0)
    name: str = Field(max_length=100)
    transports: str = Field(default="", max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_used_at: dt.datetime | None = None


class WebauthnChallenge(SQLModel, table=True):
    """A challenge handed to the browser: one purpose, one member (or none for a passwordless login),
    a few minutes to live, used once."""

    __tablename__ = "mfa_webauthn_challenge"

    id: int | None = Field(default=None, primary_key=True)
    challenge: str = Field(max_length=128, unique=True, index=True)  # base64url
    purpose: str = Field(max_length=20)  # register | login | second | reauth
    member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime = Field(index=True)
    used_at: dt.datetime | None = None
