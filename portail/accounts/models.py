"""Tables of the accounts package: members, sessions, one-time links, login throttling,
organizations/territories and memberships, and the administrative audit log."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from portail.db import utcnow


def new_public_id() -> str:
    return uuid.uuid4().hex


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (
        # The few administrators, found without reading every member (``portail serve`` on start).
        Index("ix_member_admin", "id", sqlite_where=text("is_admin = 1"), postgresql_where=text("is_admin")),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=new_public_id, max_length=32, unique=True, index=True)
    email: str = Field(max_length=320)
    email_key: str = Field(max_length=320, unique=True, index=True)  # normalized, case-folded
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    locale: str = Field(default="fr-CA", max_length=8)
    is_admin: bool = Field(default=False)
    roles: str = Field(default="", max_length=200)  # space-separated extra roles, e.g. privacy-officer
    territory_id: int | None = Field(default=None, foreign_key="organization.id")
    email_verified_at: dt.datetime | None = None
    disabled_at: dt.datetime | None = None
    terms_version: str = Field(default="", max_length=40)
    terms_accepted_at: dt.datetime | None = None
    privacy_version: str = Field(default="", max_length=40)
    privacy_accepted_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)

    @property
    def verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def has_role(self, role: str) -> bool:
        return self.is_admin or role in self.roles.split()


class LoginSession(SQLModel, table=True):
    """A browser session. The cookie carries a random id; only its SHA-256 is stored."""

    __tablename__ = "login_session"
    __table_args__ = (
        Index("ix_login_session_member_active", "member_id", "ended_at"),
        # the expiry sweep (accounts/expiry.py): live sessions idle, and live sessions too old
        Index("ix_login_session_live_last_seen", "ended_at", "last_seen_at"),
        Index("ix_login_session_live_created", "ended_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    sid: str = Field(max_length=64, unique=True, index=True)  # OIDC session id, public
    member_id: int = Field(foreign_key="member.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)
    auth_time: dt.datetime = Field(default_factory=utcnow)
    amr: str = Field(default="pwd", max_length=100)  # space-separated authentication methods
    user_agent: str = Field(default="", max_length=400)
    ip_address: str = Field(default="", max_length=64)
    ended_at: dt.datetime | None = None
    end_reason: str = Field(default="", max_length=40)


class OneTimeLink(SQLModel, table=True):
    """A single-use link sent by mail: verification, password reset, email change."""

    __tablename__ = "one_time_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    purpose: str = Field(max_length=20)  # verify | reset | email-change
    member_id: int = Field(foreign_key="member.id", index=True)
    new_email: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    used_at: dt.datetime | None = None  # when it stopped working (used, or replaced by a newer link)
    end_reason: str = Field(default="", max_length=20)  # "" (live, or ended before this was kept) | used | superseded


class LoginThrottle(SQLModel, table=True):
    """Failed-login counters per account and per client address, shared by every process."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=400)  # "account:<email_key>" or "ip:<address>"
    failures: int = Field(default=0)
    last_failure_at: dt.datetime = Field(default_factory=utcnow)
    blocked_until: dt.datetime | None = None


class Organization(SQLModel, table=True):
    """An organization or a territory (MRC, neighbourhood) served by instances."""

    __tablename__ = "organization"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="organization", max_length=20)  # organization | territory
    region: str | None = Field(default=None, max_length=2, index=True)  # Québec administrative region 01-17
    locality: str | None = Field(default=None, max_length=200)  # MRC or neighbourhood
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description_en: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # "" → French
    website: str | None = Field(default=None, max_length=500)
    contact_email: str = Field(default="", max_length=320)  # recorded by the federation (federation_0006)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("organization_id", "member_id"),
        # the roster's keyset pages and its capped count (organizations.roster; accounts_0004)
        Index("ix_membership_roster", "organization_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(default="member", max_length=20)  # member | admin
    status: str = Field(default="active", max_length=20)  # active | invited | requested
    created_at: dt.datetime = Field(default_factory=utcnow)


# Actions whose first word is not the log they belong to: a hosting request is the federation's business.
FEDERATION_ACTION_PREFIXES = ("hoster.", "instance.", "federation.", "organization.hosting")


def audit_category(action: str) -> str:
    """The log an action belongs to, from its prefix: ``federation`` for the federation desk's
    actions (``FEDERATION_ACTION_PREFIXES``), else the action's first word (``member``,
    ``organization``, ``consent``…). The migration accounts_0005 computes the same in SQL."""
    if action.startswith(FEDERATION_ACTION_PREFIXES):
        return "federation"
    return action.split(".", 1)[0][:40]


def _category_default(context: Any) -> str:
    """Fill ``category`` for rows inserted without one (multi-row Core INSERTs)."""
    return audit_category(str(context.get_current_parameters().get("action") or ""))


class AuditEvent(SQLModel, table=True):
    """Who did what, when and why: every administrative decision and security event."""

    __tablename__ = "audit_event"
    __table_args__ = (
        # a desk's log (``/federation/admin``: category "federation"), newest first, without a scan
        Index("ix_audit_event_category_at", "category", "at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, index=True)  # member id; None for the system/CLI
    action: str = Field(max_length=80)
    category: str = Field(
        default="",
        sa_column=Column(String(40), nullable=False, default=_category_default, server_default=""),
    )  # audit_category(action), written by members.audit
    subject_type: str = Field(default="", max_length=40)
    subject_id: str = Field(default="", max_length=80)
    member_id: int | None = Field(default=None, index=True)  # the member the event is about
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ip_address: str = Field(default="", max_length=64)
