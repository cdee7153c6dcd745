"""Tables of the federation registry: hosters and their people, instances (nodes) with their
verification, approval and health, links between instances and organizations/territories, and
personal API tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portail.db import utcnow

SOFTWARE = ("nextcloud", "matrix", "passerelles", "praxis", "discourse", "other")
SCOPES = ("central", "organization", "territorial")
INSTANCE_STATUSES = ("awaiting-proof", "awaiting-approval", "active", "suspended", "retired")
HOSTER_STATUSES = ("applied", "active", "suspended", "refused", "excluded")


class Hoster(SQLModel, table=True):
    __tablename__ = "hoster"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    name: str = Field(max_length=200)
    website: str | None = Field(default=None, max_length=500)
    contact_email: str = Field(default="", max_length=320)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    region: str | None = Field(default=None, max_length=2)
    charter_version: str = Field(default="", max_length=40)
    charter_accepted_at: dt.datetime | None = None
    charter_due_at: dt.datetime | None = None  # a newer charter must be accepted by then (governance.py)
    status: str = Field(default="applied", max_length=20)
    status_reason: str = Field(default="", max_length=1000)
    client_id: str | None = Field(default=None, max_length=100)  # its client_credentials client for the API
    created_at: dt.datetime = Field(default_factory=utcnow)
    decided_at: dt.datetime | None = None
    # -- CHATONS organization data (statoolinfos.py), edited on the hoster's page
    organization_type: str = Field(default="", max_length=20)  # ASSOCIATION, COOPERATIVE, … (statoolinfos)
    legal_url: str = Field(default="", max_length=500)
    terms_url: str = Field(default="", max_length=500)
    logo_url: str = Field(default="", max_length=500)
    start_date: dt.date | None = None  # when the organization was founded (organization.startdate)


class HosterPerson(SQLModel, table=True):
    __tablename__ = "hoster_person"
    __table_args__ = (UniqueConstraint("hoster_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    hoster_id: int = Field(foreign_key="hoster.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(default="hoster-member", max_length=20)  # hoster-admin | hoster-member


class Instance(SQLModel, table=True):
    __tablename__ = "instance"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    name: str = Field(max_length=200)
    software: str = Field(max_length=20, index=True)
    base_url: str = Field(max_length=500)
    # normalized origin (origins.origin_key): a live node's key is taken, a retired or expired one's released
    origin_key: str | None = Field(default=None, max_length=500, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description_en: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # "" → French
    contact_email: str = Field(default="", max_length=320)  # who answers for this node (else the hoster)
    hoster_id: int | None = Field(default=None, foreign_key="hoster.id", index=True)
    transfer_to_id: int | None = Field(default=None, foreign_key="hoster.id", index=True)  # offered to this hoster
    scope: str = Field(default="central", max_length=20, index=True)
    # the organization or territory it serves, once that one accepted it (acceptance.py); members see it then
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    claimed_organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    organization_status: str = Field(default="", max_length=20)  # "" | requested | accepted | refused | withdrawn
    members_only: bool = Field(default=False)  # only members of the organizations it serves may log in
    status: str = Field(default="awaiting-proof", max_length=20, index=True)
    status_reason: str = Field(default="", max_length=1000)
    source: str = Field(default="registry", max_length=20)  # file (instances.toml) | registry
    trusted: bool = Field(default=False)
    client_id: str | None = Field(default=None, max_length=100, index=True)  # its OAuthClient
    # How the tool names Portail in its configuration: Nextcloud user_oidc provider id, Synapse idp_id
    provider_identifier: str = Field(default="encommun", max_length=80)
    push_notifications: bool = Field(default=False)  # its client may push (client_credentials, notifications:push)
    redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    post_logout_redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    backchannel_logout_uri: str | None = Field(default=None, max_length=1000)
    login_url: str | None = Field(default=None, max_length=1000)  # where "open" starts the tool's OIDC login
    feed_url: str | None = Field(default=None, max_length=1000)
    account_events_uri: str | None = Field(default=None, max_length=1000)  # RISC/SET receiver (consent issue)
    purposes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data_categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # English versions for English-speaking members; empty means "show the French" (bilingual.py)
    purposes_en: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data_categories_en: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    challenge: str | None = Field(default=None, max_length=100)  # served at /.well-known/portail-challenge
    challenge_issued_at: dt.datetime | None = None  # an unproven registration expires after federation_unproven_days
    verified_at: dt.datetime | None = None
    # -- proof of control, re-checked every proof_recheck_hours (proof_recheck.py)
    proof_method: str = Field(default="http", max_length=10)  # http (challenge served) | dns (TXT record)
    proof_checked_at: dt.datetime | None = None  # last check, passed or not
    proof_due_at: dt.datetime | None = Field(default=None, index=True)  # next re-check (None: at the next round)
    proof_ok_at: dt.datetime | None = None  # last passed check; None: not confirmed since the upgrade
    proof_lost_at: dt.datetime | None = None  # first failed re-check since the last passed one (hoster told)
    proof_escalated_at: dt.datetime | None = None  # the federation administrators told (after proof_grace_days)
    proof_failure: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    approved_at: dt.datetime | None = None
    approved_by: int | None = None
    # -- health, written by the prober only
    health: str = Field(default="unknown", max_length=10)  # unknown | up | degraded | down
    latency_ms: int | None = None
    software_version: str | None = Field(default=None, max_length=100)
    consecutive_failures: int = Field(default=0)
    last_probe_at: dt.datetime | None = None
    last_probe_error: str = Field(default="", max_length=500)
    down_notified_at: dt.datetime | None = None
    last_up_at: dt.datetime | None = None  # last probe that reached it: "down" needs it to have been up once
    demo: bool = Field(default=False)  # a demonstration entry (instances.toml ``demo = true``): never probed
    # -- CHATONS service data (statoolinfos.py) and where the data lives (residency.py), on the edit form
    registration: str = Field(default="", max_length=40)  # None;Free;Member;Client (service.registration)
    install_type: str = Field(default="", max_length=20)  # DISTRIBUTION, PROVIDER, PACKAGE, TOOLING, CLONE
    legal_url: str = Field(default="", max_length=500)
    guide_url: str = Field(default="", max_length=500)  # user guide (service.guide.user)
    software_name: str = Field(default="", max_length=100)  # for software Portail does not know
    software_license: str = Field(default="", max_length=100)  # SPDX id, when Portail does not know it
    data_location: str = Field(default="", max_length=10)  # CA-QC, CA-ON, … or a country code (FR)
    backup_location: str = Field(default="", max_length=10)
    hosting_provider: str = Field(default="", max_length=200)  # who runs the machines (host.provider)
    provider_type: str = Field(default="", max_length=20)  # HOME, HOSTEDBAY, HOSTEDSERVER, OUTSOURCED
    server_type: str = Field(default="", max_length=20)  # NANO, PHYSICAL, VIRTUAL, SHARED, CLOUD
    pia_recorded_at: dt.datetime | None = None  # Law 25 privacy impact assessment done (data leaves Québec)
    pia_recorded_by: int | None = None
    pia_note: str = Field(default="", max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ProbeSample(SQLModel, table=True):
    """One probe's outcome, kept ``UPTIME_DAYS`` for the 30-day uptime (probes.py)."""

    __tablename__ = "probe_sample"

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    state: str = Field(max_length=10)  # up | degraded | down
    latency_ms: int | None = None


class InstanceLink(SQLModel, table=True):
    """An organization or territory linked to an instance (beyond the one it was registered for)."""

    __tablename__ = "instance_link"
    __table_args__ = (UniqueConstraint("instance_id", "organization_id"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    status: str = Field(default="requested", max_length=20)  # requested | active | refused
    requested_by: int | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    decided_at: dt.datetime | None = None


class ApiToken(SQLModel, table=True):
    """A personal API token (scoped, expiring, hashed at rest, revocable)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=12)  # first characters, shown to recognise the token
    scopes: str = Field(max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
