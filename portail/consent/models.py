"""Tables of the consent and personal-data package (Law 25).

Consents themselves and their ledger live in ``portail.oidc.models`` (the provider writes them when a
member clicks "allow"); this package adds the published privacy-policy versions, the export jobs
(right of access and portability), the deletion requests (right to erasure; what is kept after the
purge: a reference and dates, never who), the Security Event Token deliveries that tell the tools
about a purge, and the register of confidentiality incidents.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel

from portail.db import utcnow
from portail.outbox import DeliveryColumns


def new_reference() -> str:
    return secrets.token_hex(8)


def _text() -> str:
    return Field(default="", sa_column=Column(Text, nullable=False, default=""))  # type: ignore[no-any-return]


class PrivacyPolicyVersion(SQLModel, table=True):
    """A published version of the privacy policy; a material one makes members review and re-consent."""

    __tablename__ = "privacy_policy_version"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=40, unique=True, index=True)
    published_at: dt.datetime = Field(default_factory=utcnow, index=True)
    material: bool = Field(default=True)
    summary_fr: str = _text()
    summary_en: str = _text()
    published_by: int | None = Field(default=None)  # member id of the administrator; None from the CLI


class DataExport(SQLModel, table=True):
    """A member's request for the archive of everything Portail holds about them (right of access)."""

    __tablename__ = "data_export"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default="pending", max_length=12, index=True)  # pending | running | ready | failed | expired
    channel: str = Field(default="web", max_length=8)  # web | cli
    requested_at: dt.datetime = Field(default_factory=utcnow)
    started_at: dt.datetime | None = None
    ready_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None  # the archive is dropped after this
    archive: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the JSON document
    size_bytes: int = Field(default=0)
    error: str = Field(default="", max_length=500)


class DeletionRequest(SQLModel, table=True):
    """A request to delete an account. After the purge ``member_id`` is empty: only the fact and dates remain."""

    __tablename__ = "deletion_request"
    __table_args__ = (
        Index(
            "ux_deletion_request_pending",
            "member_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(default_factory=new_reference, max_length=16, unique=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    status: str = Field(default="pending", max_length=12, index=True)  # pending | cancelled | purging | purged
    requested_at: dt.datetime = Field(default_factory=utcnow)
    due_at: dt.datetime = Field(index=True)
    cancelled_at: dt.datetime | None = None
    cancel_reason: str = Field(default="", max_length=20)  # login | member | officer
    purged_at: dt.datetime | None = None
    tools_notified: int = Field(default=0)


class AccountEventDelivery(DeliveryColumns, table=True):
    """One Security Event Token (RFC 8417) to push to one tool (RFC 8935), with retries (``portail.outbox``).

    ``token`` holds the signed SET until it is delivered or given up on, then is emptied: the row
    keeps only that a tool was told, when, and how it answered.
    """

    __tablename__ = "account_event_delivery"
    __table_args__ = (Index("ix_account_event_due", "status", "next_attempt_at"),)

    jti: str = Field(max_length=64, unique=True)
    event_type: str = Field(max_length=200)
    deletion_reference: str = Field(default="", max_length=16, index=True)
    token: str = _text()


class ConfidentialityIncident(SQLModel, table=True):
    """The register of confidentiality incidents (Law 25; Règlement sur les incidents de confidentialité, art. 11)."""

    __tablename__ = "confidentiality_incident"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(default_factory=new_reference, max_length=16, unique=True)
    title: str = Field(max_length=200)
    occurred: str = Field(default="", max_length=100)  # date or period, possibly approximate
    discovered_on: dt.date
    circumstances: str = _text()  # what happened
    information: str = _text()  # what personal information is concerned
    people_count: int | None = None  # how many people (approximate when unknown)
    risk_assessment: str = _text()
    serious_risk: bool = Field(default=False)  # risk of serious injury
    measures: str = _text()  # measures taken to reduce the risk of injury
    cai_notified_on: dt.date | None = None  # Commission d'accès à l'information
    people_notified_on: dt.date | None = None
    public_notice: str = _text()
    recorded_by: int | None = Field(default=None)  # member id of the privacy officer
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
