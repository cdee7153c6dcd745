"""A member with a row in every table that can hold something about them (for export and purge tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from portail.accounts import members, sessions
from portail.accounts.models import LoginThrottle, Member, Membership, OneTimeLink, Organization
from portail.consent.erasure import is_text
from portail.consent.models import DataExport, DeletionRequest
from portail.db import utcnow
from portail.federation.models import ApiToken, Hoster, HosterPerson, Instance, InstanceLink
from portail.notifications.models import Notification, NotificationPreference, SourceLink, SourceState
from portail.oidc.models import (
    AuthorizationCode,
    Consent,
    ConsentEvent,
    DataAccess,
    Grant,
    OAuthClient,
    RefreshToken,
    SessionClient,
)

EMAIL = "Zoe.Lavoie-Tremblay@example.org"
NAME = "Zoé Lavoie-Tremblay"


@dataclass
class Population:
    member_id: int
    other_id: int
    client_id: str
    sid: str


def populate(
    session: Session, *, email: str = EMAIL, name: str = NAME, password_hash: str = "argon2-hash"
) -> Population:
    now = utcnow()
    territory = Organization(slug="mrc-test", name="MRC Test", kind="territory", region="05")
    org = Organization(slug="obnl-test", name="OBNL Test")
    session.add_all([territory, org])
    session.flush()
    member = members.create_member(
        session, email=email, name=name, password_hash=password_hash, verified=True, privacy_version="2026-11"
    )
    member.territory_id = territory.id
    member.roles = "privacy-officer"
    other = members.create_member(session, email="autre@example.org", name="Autre Personne", password_hash="h")
    mid, oid = member.id or 0, other.id or 0
    _token, login = sessions.open_session(session, member, user_agent="Firefox 140", ip_address="203.0.113.7")
    sessions.open_session(session, other, user_agent="Chromium", ip_address="198.51.100.1")
    session.add(
        OneTimeLink(
            token_hash="a" * 64,
            purpose="email-change",
            member_id=mid,
            new_email=f"new.{email}",
            expires_at=now + dt.timedelta(hours=1),
        )
    )
    session.add(LoginThrottle(key=f"account:{member.email_key}", failures=2))
    session.add(Membership(organization_id=org.id or 0, member_id=mid, role="admin"))
    session.add(Membership(organization_id=org.id or 0, member_id=oid))
    hoster = Hoster(slug="hebergeur", name="Hébergeur", contact_email=email, status="active")
    session.add(hoster)
    session.flush()
    session.add(HosterPerson(hoster_id=hoster.id or 0, member_id=mid, role="hoster-admin"))
    client = OAuthClient(client_id="nuage", name="Nuage (client)", redirect_uris=["https://nuage.example/cb"])
    session.add(client)
    instance = Instance(
        slug="nuage",
        name="Nuage En commun",
        software="nextcloud",
        base_url="https://nuage.example",
        hoster_id=hoster.id,
        status="active",
        client_id="nuage",
        purposes=["Vous connecter"],
        data_categories=["identité", "courriel"],
        purposes_en=["Log you in"],  # no data_categories_en: English pages show the French ones
        approved_by=mid,
        account_events_uri="https://nuage.example/events",
    )
    session.add(instance)
    session.flush()
    session.add(InstanceLink(instance_id=instance.id or 0, organization_id=org.id or 0, requested_by=mid))
    session.add(
        Consent(
            member_id=mid, client_id="nuage", scopes="openid profile email", claims=["name"], policy_version="2026-11"
        )
    )
    session.add(ConsentEvent(member_id=mid, client_id="nuage", action="granted", scopes="openid profile email",
                             policy_version="2026-11", detail=f"consent by {name}"))  # fmt: skip
    session.add(
        ConsentEvent(member_id=mid, client_id="", purpose="annuaire", action="granted", policy_version="2026-11")
    )
    grant = Grant(client_id="nuage", member_id=mid, sid=login.sid, scope="openid profile email offline_access")
    session.add(grant)
    session.flush()
    session.add(
        RefreshToken(
            token_hash="b" * 64, grant_id=grant.id or 0, client_id="nuage", expires_at=now + dt.timedelta(days=1)
        )
    )
    session.add(
        AuthorizationCode(
            code_hash="c" * 64,
            client_id="nuage",
            member_id=mid,
            sid=login.sid,
            redirect_uri="https://nuage.example/cb",
            scope="openid",
            auth_time=now,
            expires_at=now + dt.timedelta(minutes=1),
        )
    )
    session.add(SessionClient(sid=login.sid, client_id="nuage", member_id=mid))
    session.add(DataAccess(member_id=mid, client_id="nuage", kind="token", day=now.date(), count=3, scopes="openid"))
    session.add(DataAccess(member_id=mid, client_id="nuage", kind="userinfo", day=now.date(), count=1, scopes="openid"))
    session.add(ApiToken(member_id=mid, name="script", token_hash="d" * 64, prefix="pt_abc", scopes="federation:read"))
    session.add(DataExport(member_id=mid, status="ready", archive=f'{{"email": "{email}"}}'))
    session.add(DeletionRequest(member_id=mid, status="cancelled", due_at=now, cancel_reason="login"))
    members.audit(
        session, "member.disabled", actor_id=oid, member_id=mid, reason=f"{name} a demandé", ip_address="203.0.113.7"
    )
    members.audit(session, "hoster.approved", actor_id=mid, subject_type="hoster", subject_id="hebergeur")
    session.add(
        Notification(
            member_id=mid,
            instance_id=instance.id or 0,
            external_id="n-1",
            kind="mention",
            title=f"{name} a été mentionnée",
            body="Dans le salon Général",
            link="https://nuage.example/n/1",
        )
    )
    session.add(NotificationPreference(member_id=mid, instance_id=instance.id or 0, digest="weekly"))
    session.add(
        SourceLink(member_id=mid, instance_id=instance.id or 0, kind="discourse", account="zoe", secret_sealed="e" * 64)
    )
    session.add(SourceState(member_id=mid, instance_id=instance.id or 0, status="ok", since="s1"))
    _fill_other_tables(session, mid, email, name)
    session.flush()
    return Population(member_id=mid, other_id=oid, client_id="nuage", sid=login.sid)


def _fill_other_tables(session: Session, member_id: int, email: str, name: str) -> None:
    """Tables added by other packages later (notifications, …): one row each, with text naming the member."""
    known = {t.name for t in SQLModel.metadata.sorted_tables if t.name in KNOWN_TABLES}
    for table in SQLModel.metadata.sorted_tables:
        if table.name in known or not any(c.name == "member_id" for c in table.columns):
            continue
        values: dict[str, Any] = {}
        for column in table.columns:
            if column.name == "member_id":
                values[column.name] = member_id
            elif column.primary_key and isinstance(column.type, sa.Integer):
                continue
            elif column.nullable or column.default is not None or column.server_default is not None:
                continue
            else:
                values[column.name] = _sample(column, email, name)
        session.execute(sa.insert(table).values(**values))


def _sample(column: sa.Column[Any], email: str, name: str) -> Any:
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):  # e.g. SQLModel's UTCDateTime: sample what it stores
        kind = kind.impl if isinstance(kind.impl, sa.types.TypeEngine) else kind
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 1
    if isinstance(kind, sa.DateTime):
        return utcnow()
    if isinstance(kind, sa.Date):
        return utcnow().date()
    if isinstance(kind, sa.JSON):
        return {"about": name}
    return f"{name} <{email}>"[: getattr(kind, "length", None) or 400]


KNOWN_TABLES = {
    "member", "login_session", "one_time_link", "membership", "consent", "consent_event", "data_access",
    "oauth_grant", "session_client", "api_token", "hoster_person", "audit_event", "deletion_request",
    "data_export", "authorization_code", "refresh_token", "notification", "notification_preference",
    "notification_source_link", "notification_source_state",
}  # fmt: skip


def text_cells(session: Session) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text and JSON cell of every table."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        columns = [c for c in table.columns if is_text(c) or isinstance(c.type, sa.JSON)]
        if not columns:
            continue
        for row in session.execute(sa.select(*columns)).mappings():
            for key, value in row.items():
                if value is not None:
                    found.append((table.name, key, value if isinstance(value, str) else repr(value)))
    return found


def mentions(session: Session, *needles: str) -> list[tuple[str, str]]:
    lowered = [n.casefold() for n in needles]
    return [
        (table, column) for table, column, value in text_cells(session) if any(n in value.casefold() for n in lowered)
    ]


def member_exists(session: Session, member_id: int) -> bool:
    return session.get(Member, member_id) is not None
