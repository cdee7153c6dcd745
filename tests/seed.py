"""Rows for tests, written straight through the models: organizations and territories, hosters,
instances (active unless told otherwise), instance links and memberships. Nothing here goes through
the federation's pages, so portal tests do not depend on them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from portail.accounts.models import Member, Membership, Organization
from portail.federation.models import Hoster, Instance, InstanceLink


def organization(
    db: Session, slug: str, name: str, *, kind: str = "organization", region: str | None = None, **extra: Any
) -> Organization:
    row = Organization(slug=slug, name=name, kind=kind, region=region, **extra)
    db.add(row)
    db.flush()
    return row


def territory(db: Session, slug: str, name: str, region: str, **extra: Any) -> Organization:
    return organization(db, slug, name, kind="territory", region=region, **extra)


def hoster(db: Session, slug: str, name: str, **extra: Any) -> Hoster:
    row = Hoster(slug=slug, name=name, status="active", **extra)
    db.add(row)
    db.flush()
    return row


def instance(
    db: Session,
    slug: str,
    name: str,
    *,
    software: str = "nextcloud",
    scope: str = "central",
    base_url: str | None = None,
    organization_id: int | None = None,
    hoster_id: int | None = None,
    status: str = "active",
    **extra: Any,
) -> Instance:
    row = Instance(
        slug=slug,
        name=name,
        software=software,
        scope=scope,
        base_url=base_url or f"https://{slug}.encommun.example",
        organization_id=organization_id,
        hoster_id=hoster_id,
        status=status,
        **extra,
    )
    db.add(row)
    db.flush()
    return row


def link(db: Session, instance_id: int, organization_id: int, status: str = "active") -> InstanceLink:
    row = InstanceLink(instance_id=instance_id, organization_id=organization_id, status=status)
    db.add(row)
    db.flush()
    return row


def membership(
    db: Session, organization_id: int, member_id: int, *, role: str = "member", status: str = "active"
) -> Membership:
    row = Membership(organization_id=organization_id, member_id=member_id, role=role, status=status)
    db.add(row)
    db.flush()
    return row


def live_in(db: Session, member_id: int, territory_id: int | None) -> Member:
    member = db.get(Member, member_id)
    assert member is not None
    member.territory_id = territory_id
    db.add(member)
    db.flush()
    return member
