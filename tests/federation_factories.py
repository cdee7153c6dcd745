"""Rows the federation tests start from: organizations, memberships, hosters, instances."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session, select

from portail import db as database
from portail.accounts.models import Member, Membership, Organization
from portail.config import Settings
from portail.db import utcnow
from portail.federation.models import Hoster, HosterPerson, Instance
from portail.oidc import keys

T = TypeVar("T")


def in_db(settings: Settings, fn: Callable[[Session], T]) -> T:
    handle = database.Database(settings)
    keys.attach(handle, settings)  # the stored signing keys, as the application's units of work carry them
    try:
        with handle.session() as session:
            return fn(session)
    finally:
        handle.dispose()


def member_id(session: Session, email: str) -> int:
    member = session.exec(select(Member).where(Member.email_key == email.casefold())).one()
    assert member.id is not None
    return member.id


def add_organization(
    settings: Settings, slug: str, name: str, kind: str = "organization", region: str | None = None
) -> int:
    def add(session: Session) -> int:
        org = Organization(slug=slug, name=name, kind=kind, region=region)
        session.add(org)
        session.flush()
        assert org.id is not None
        return org.id

    return in_db(settings, add)


def add_membership(settings: Settings, org_slug: str, email: str, role: str = "member") -> None:
    def add(session: Session) -> None:
        org = session.exec(select(Organization).where(Organization.slug == org_slug)).one()
        session.add(Membership(organization_id=org.id or 0, member_id=member_id(session, email), role=role))

    in_db(settings, add)


def set_territory(settings: Settings, email: str, territory_slug: str) -> None:
    def change(session: Session) -> None:
        org = session.exec(select(Organization).where(Organization.slug == territory_slug)).one()
        member = session.get(Member, member_id(session, email))
        assert member is not None
        member.territory_id = org.id
        session.add(member)

    in_db(settings, change)


def add_hoster(settings: Settings, slug: str, admin_email: str | None = None, region: str | None = None) -> int:
    def add(session: Session) -> int:
        hoster = Hoster(
            slug=slug,
            name=slug.title(),
            contact_email=f"contact@{slug}.example",
            status="active",
            charter_version="2026-11",
            charter_accepted_at=utcnow(),
            decided_at=utcnow(),
            region=region,
        )
        session.add(hoster)
        session.flush()
        if admin_email:
            session.add(
                HosterPerson(hoster_id=hoster.id or 0, member_id=member_id(session, admin_email), role="hoster-admin")
            )
        assert hoster.id is not None
        return hoster.id

    return in_db(settings, add)


def add_instance(
    settings: Settings,
    slug: str,
    *,
    scope: str = "central",
    organization: str | None = None,
    hoster: str | None = None,
    status: str = "active",
    software: str = "other",
    base_url: str | None = None,
    client_id: str | None = None,
) -> int:
    def add(session: Session) -> int:
        org = (
            session.exec(select(Organization).where(Organization.slug == organization)).one() if organization else None
        )
        host = session.exec(select(Hoster).where(Hoster.slug == hoster)).one() if hoster else None
        instance = Instance(
            slug=slug,
            name=slug.replace("-", " ").title(),
            software=software,
            base_url=base_url or f"https://{slug}.example",
            scope=scope,
            organization_id=org.id if org else None,
            hoster_id=host.id if host else None,
            status=status,
            client_id=client_id,
            redirect_uris=[f"https://{slug}.example/callback"],
        )
        session.add(instance)
        session.flush()
        assert instance.id is not None
        return instance.id

    return in_db(settings, add)
