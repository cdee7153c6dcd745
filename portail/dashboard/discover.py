"""The "discover" section of the home page: what the member could use or join, near them.

The member's region is their territory's (``Organization.region``). Suggested are
- the active instances registered for organizations and territories of that region that the member
  does not see yet, each with a "request access" action (a join request to the organization or
  territory the instance serves);
- the organizations of that region the member does not belong to, with "ask to join".

Cost: index lookups only (organization.region, instance.organization_id, membership.member_id,
hoster.id), each bounded by a ``LIMIT``: a big federation does not make the page slower. The
suggestions come from the first ``REGION_SAMPLE`` organizations of the region, not from a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import true
from sqlmodel import Session, col, select

from portail.accounts import regions
from portail.accounts.models import Member, Membership, Organization
from portail.dashboard.tiles import SOFTWARE_LABELS, Circles
from portail.federation.models import Hoster, Instance

SHOWN = 8  # suggestions shown per list
REGION_SAMPLE = 40  # organizations of the region read at most


@dataclass(frozen=True)
class Suggestion:
    """An instance the member could ask access to."""

    name: str
    software: str
    software_label: str
    hoster: str | None
    organization: Organization
    status: str  # "" | requested | invited: the member's pending membership of that organization


@dataclass(frozen=True)
class Joinable:
    organization: Organization
    status: str  # "" | requested | invited


@dataclass(frozen=True)
class Discovery:
    region: str | None
    region_name: str
    instances: list[Suggestion]
    organizations: list[Joinable]


def discover(db: Session, member: Member, circles: Circles, seen: set[int]) -> Discovery:
    region = circles.territory.region if circles.territory else None
    if not region:
        return Discovery(region=None, region_name="", instances=[], organizations=[])
    mine = list(circles.ids)
    elsewhere = col(Organization.id).not_in(mine) if mine else true()
    # Bounded reads, each through an index: a sample of the region's organizations (region index),
    # then their instances (instance.organization_id), whatever the federation's size.
    nearby = list(db.exec(select(Organization).where(Organization.region == region, elsewhere).limit(REGION_SAMPLE)))
    by_id = {o.id or 0: o for o in nearby}
    # (No LIMIT here: with one, PostgreSQL may prefer a sequential scan that "stops early".)
    found = db.exec(select(Instance).where(col(Instance.organization_id).in_(list(by_id)))).all() if by_id else []
    usable = [
        (i, by_id[i.organization_id or 0])
        for i in found
        if i.status == "active" and i.scope != "central" and i.id not in seen
    ]
    usable = sorted(usable, key=lambda pair: pair[0].name.casefold())[:SHOWN]
    organizations = [o for o in nearby if o.kind == "organization"]
    asked = {o.id or 0 for _i, o in usable} | {o.id or 0 for o in organizations}
    pending: dict[int, str] = {}
    if asked:
        for organization_id, status in db.exec(
            select(Membership.organization_id, Membership.status).where(
                Membership.member_id == member.id, col(Membership.organization_id).in_(asked)
            )
        ):
            pending[organization_id] = status
    hoster_ids = {i.hoster_id for i, _o in usable if i.hoster_id is not None}
    hosters = (
        dict(db.exec(select(Hoster.id, Hoster.name).where(col(Hoster.id).in_(hoster_ids))).all()) if hoster_ids else {}
    )
    suggestions = [
        Suggestion(
            name=i.name,
            software=i.software if i.software in SOFTWARE_LABELS else "other",
            software_label=SOFTWARE_LABELS.get(i.software, ""),
            hoster=hosters.get(i.hoster_id) if i.hoster_id else None,
            organization=o,
            status=pending.get(o.id or 0, ""),
        )
        for i, o in usable
    ]
    joinable = sorted(
        (Joinable(organization=o, status=pending.get(o.id or 0, "")) for o in organizations),
        key=lambda j: j.organization.name.casefold(),
    )[:SHOWN]
    return Discovery(region=region, region_name=regions.name(region), instances=suggestions, organizations=joinable)
