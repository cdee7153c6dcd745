"""The export document: everything Portail holds about one member, as JSON (schema: docs/export-format.md).

One section per category (profile, sessions, organizations, tools and consents, consent ledger,
optional purposes, access log, API tokens, hoster roles, notifications and their preferences and
linked accounts, audit events, requests), plus ``other``: the rows of any table that refers to the
member and has no section of its own yet, so that a table added later is exported before anyone
writes its section. Secrets (password hash, token hashes, encrypted keys) are never exported; the document
says that they exist.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, or_, select

from portail.accounts.models import (
    AuditEvent,
    LoginSession,
    LoginThrottle,
    Member,
    Membership,
    OneTimeLink,
    Organization,
)
from portail.config import Settings
from portail.consent import access_log, ledger, purposes
from portail.consent.models import DataExport, DeletionRequest
from portail.db import utcnow
from portail.federation.models import ApiToken, Hoster, HosterPerson, Instance
from portail.notifications.models import Notification, NotificationPreference, SourceLink, SourceState
from portail.oidc.models import Grant, SessionClient

FORMAT = "portail-export"
FORMAT_VERSION = 1
SECRET_COLUMN = re.compile(r"(hash|secret|encrypted|password|access_token|refresh_token|^token$|key$)")
# Tables with a section of their own (or deliberately left out: see docs/export-format.md).
COVERED = {
    "member",
    "login_session",
    "one_time_link",
    "membership",
    "consent",
    "consent_event",
    "data_access",
    "oauth_grant",
    "session_client",
    "api_token",
    "hoster_person",
    "audit_event",
    "deletion_request",
    "data_export",
    "authorization_code",  # lives a minute; its grant is exported
    "refresh_token",  # secret; its grant is exported
    "notification",
    "notification_preference",
    "notification_source_link",
    "notification_source_state",
    "notification_discourse_key_request",  # pending ten minutes at most; only a sealed one-time private key
}


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _row(obj: SQLModel, fields: list[str]) -> dict[str, Any]:
    return {name: _iso(getattr(obj, name)) for name in fields}


def profile(member: Member, db: Session) -> dict[str, Any]:
    data = _row(
        member,
        [
            "public_id",
            "email",
            "name",
            "locale",
            "email_verified_at",
            "disabled_at",
            "terms_version",
            "terms_accepted_at",
            "privacy_version",
            "privacy_accepted_at",
            "created_at",
            "updated_at",
        ],
    )
    data["roles"] = (["admin"] if member.is_admin else []) + member.roles.split()
    territory = db.get(Organization, member.territory_id) if member.territory_id else None
    data["territory"] = {"slug": territory.slug, "name": territory.name} if territory else None
    data["password"] = "argon2id hash held, not exported"  # noqa: S105 - a description, not a password
    return data


def _sessions(db: Session, member_id: int) -> list[dict[str, Any]]:
    rows = db.exec(select(LoginSession).where(LoginSession.member_id == member_id).order_by(col(LoginSession.id)))
    fields = ["sid", "created_at", "last_seen_at", "auth_time", "amr", "user_agent", "ip_address", "ended_at"]
    return [{**_row(r, fields), "end_reason": r.end_reason} for r in rows]


def _organizations(db: Session, member_id: int) -> list[dict[str, Any]]:
    query = (
        select(Membership, Organization)
        .join(Organization, col(Organization.id) == col(Membership.organization_id))
        .where(Membership.member_id == member_id)
    )
    return [
        {
            "slug": org.slug,
            "name": org.name,
            "kind": org.kind,
            "region": org.region,
            "locality": org.locality,
            "role": m.role,
            "status": m.status,
            "since": _iso(m.created_at),
        }
        for m, org in db.exec(query)
    ]


def _tools(db: Session, member_id: int) -> list[dict[str, Any]]:
    grants: dict[str, list[dict[str, Any]]] = {}
    for g in db.exec(select(Grant).where(Grant.member_id == member_id).order_by(col(Grant.id))):
        grants.setdefault(g.client_id, []).append(
            _row(g, ["scope", "offline", "created_at", "auth_time", "revoked_at", "revoked_reason"])
        )
    sessions: dict[str, list[dict[str, Any]]] = {}
    for s in db.exec(select(SessionClient).where(SessionClient.member_id == member_id)):
        sessions.setdefault(s.client_id, []).append(_row(s, ["sid", "first_at", "last_at"]))
    result = []
    for tool in ledger.tools(db, member_id):
        entry = {
            "client_id": tool.client_id,
            "name": tool.name,
            "base_url": tool.base_url,
            "software": tool.software,
            "declared_purposes": tool.purposes,
            "data_categories": tool.data_categories,
            "declared_purposes_en": tool.purposes_en,
            "data_categories_en": tool.data_categories_en,
            "consent": {
                "scopes": tool.scopes,
                "claims": tool.claims,
                "granted_at": _iso(tool.granted_at),
                "updated_at": _iso(tool.updated_at),
                "policy_version": tool.policy_version,
                "withdrawn_at": _iso(tool.withdrawn_at),
                "implicit": tool.implicit,
            },
            "last_token_at": _iso(tool.access.last_token_at),
            "last_userinfo_at": _iso(tool.access.last_userinfo_at),
            "grants": grants.pop(tool.client_id, []),
            "sessions": sessions.pop(tool.client_id, []),
        }
        result.append(entry)
    names = access_log.tool_names(db, set(grants) | set(sessions))
    for client_id in sorted(set(grants) | set(sessions)):  # tokens without a recorded consent
        result.append(
            {
                "client_id": client_id,
                "name": names.get(client_id, client_id),
                "consent": None,
                "grants": grants.get(client_id, []),
                "sessions": sessions.get(client_id, []),
            }
        )
    return result


def _audit(db: Session, member_id: int) -> list[dict[str, Any]]:
    rows = db.exec(
        select(AuditEvent)
        .where(or_(AuditEvent.member_id == member_id, AuditEvent.actor_id == member_id))
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    fields = ["at", "action", "subject_type", "subject_id", "reason", "ip_address"]
    return [
        {
            **_row(r, fields),
            "by": "self" if r.actor_id == member_id else "system" if r.actor_id is None else "administrator",
        }
        for r in rows
    ]


def _notifications(db: Session, member_id: int) -> dict[str, list[dict[str, Any]]]:
    names = {i.id: i.name for i in db.exec(select(Instance))}
    notes = db.exec(select(Notification).where(Notification.member_id == member_id).order_by(col(Notification.id)))
    fields = ["kind", "title", "body", "link", "origin", "created_at", "received_at", "read_at", "dismissed_at"]
    preferences = db.exec(select(NotificationPreference).where(NotificationPreference.member_id == member_id))
    links = db.exec(select(SourceLink).where(SourceLink.member_id == member_id))
    states = db.exec(select(SourceState).where(SourceState.member_id == member_id))
    return {
        "notifications": [{"tool": names.get(n.instance_id), **_row(n, fields)} for n in notes],
        "notification_preferences": [
            {"tool": names.get(p.instance_id), **_row(p, ["enabled", "digest", "last_digest_at", "updated_at"])}
            for p in preferences
        ],
        "linked_accounts": [
            {"tool": names.get(x.instance_id), **_row(x, ["kind", "account", "device_id", "created_at"])} for x in links
        ],
        "notification_sources": [
            {"tool": names.get(x.instance_id), **_row(x, ["status", "fetched_at", "last_error"])} for x in states
        ],
    }


def _other_tables(db: Session, member_id: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of tables that refer to the member and have no section of their own."""
    found: dict[str, list[dict[str, Any]]] = {}
    for table in SQLModel.metadata.sorted_tables:
        if table.name in COVERED:
            continue
        column = _member_column(table)
        if column is None:
            continue
        keep = [c for c in table.columns if not SECRET_COLUMN.search(c.name)]
        rows = db.execute(sa.select(*keep).where(column == member_id).limit(100_000)).mappings()
        found[table.name] = [{k: _iso(v) for k, v in row.items()} for row in rows]
    return found


def _member_column(table: sa.Table) -> sa.Column[Any] | None:
    for column in table.columns:
        if any(fk.column.table.name == "member" for fk in column.foreign_keys) or column.name == "member_id":
            return column
    return None


def build(db: Session, settings: Settings, member_id: int) -> dict[str, Any]:
    """The whole export document for one member."""
    member = db.get(Member, member_id)
    if member is None:
        raise LookupError(member_id)
    failures = db.get(LoginThrottle, f"account:{member.email_key[:380]}")
    hosters = db.exec(
        select(HosterPerson, Hoster)
        .join(Hoster, col(Hoster.id) == col(HosterPerson.hoster_id))
        .where(HosterPerson.member_id == member_id)
    )
    links = db.exec(select(OneTimeLink).where(OneTimeLink.member_id == member_id).order_by(col(OneTimeLink.id)))
    tokens = db.exec(select(ApiToken).where(ApiToken.member_id == member_id).order_by(col(ApiToken.id)))
    deletions = db.exec(select(DeletionRequest).where(DeletionRequest.member_id == member_id))
    exports = db.exec(select(DataExport).where(DataExport.member_id == member_id).order_by(col(DataExport.id)))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generated_at": _iso(utcnow()),
        "issuer": settings.issuer,
        "profile": profile(member, db),
        "sessions": _sessions(db, member_id),
        "login_failures": _row(failures, ["failures", "last_failure_at", "blocked_until"]) if failures else None,
        "mail_links": [_row(r, ["purpose", "new_email", "created_at", "expires_at", "used_at"]) for r in links],
        "organizations": _organizations(db, member_id),
        "hoster_roles": [{"hoster": h.slug, "name": h.name, "role": p.role} for p, h in hosters],
        "tools": _tools(db, member_id),
        "consent_ledger": [
            {
                "at": _iso(e.at),
                "client_id": e.client_id,
                "tool": e.tool if e.client_id else None,
                "purpose": e.purpose or None,
                "action": e.action,
                "scopes": e.scopes,
                "policy_version": e.policy_version,
                "detail": e.detail,
            }
            for e in reversed(ledger.entries(db, member_id, limit=1_000_000))
        ],
        "optional_purposes": [
            {
                "key": s.purpose.key,
                "title_fr": s.purpose.title_fr,
                "title_en": s.purpose.title_en,
                "granted": s.granted,
                "changed_at": _iso(s.changed_at),
            }
            for s in purposes.states(db, settings, member_id)
        ],
        "access_log": [
            {
                "client_id": a.client_id,
                "tool": a.tool,
                "kind": a.kind,
                "day": _iso(a.day),
                "count": a.count,
                "first_at": _iso(a.first_at),
                "last_at": _iso(a.last_at),
                "scopes": a.scopes,
            }
            for a in access_log.entries(db, member_id, limit=1_000_000)
        ],
        "api_tokens": [
            _row(t, ["name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"])
            for t in tokens
        ],
        **_notifications(db, member_id),
        "audit_events": _audit(db, member_id),
        "deletion_requests": [
            _row(d, ["reference", "status", "requested_at", "due_at", "cancelled_at"]) for d in deletions
        ],
        "exports": [_row(x, ["status", "channel", "requested_at", "ready_at", "expires_at"]) for x in exports],
        "other": _other_tables(db, member_id),
    }
