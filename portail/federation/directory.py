"""The public directory of the federation: active instances with their hoster, the organization or
territory they serve, their region, health and where their data lives (``residency.py``); as a page
and as JSON. The CHATONS StatoolInfos files are built by ``chatons.py``. Demo instances
(``availability.py``) are listed on the page and in the JSON, marked as such, but never exported:
a crawler must not count a service that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, or_, select

from portail.accounts.models import Organization
from portail.accounts.regions import REGIONS
from portail.db import utcnow
from portail.federation import availability, residency
from portail.federation.models import Hoster, Instance, InstanceLink
from portail.federation.rules import valid_slug
from portail.web import N_

STATOOL_PREFIX = "/federation/statoolinfos"  # the files themselves: chatons.py
# software -> (name, website, licence, source)
SOFTWARE_INFO: dict[str, tuple[str, str, str, str]] = {
    "nextcloud": ("Nextcloud", "https://nextcloud.com", "AGPL-3.0", "https://github.com/nextcloud/server"),
    "matrix": ("Synapse", "https://element-hq.github.io/synapse/", "AGPL-3.0", "https://github.com/element-hq/synapse"),
    "discourse": ("Discourse", "https://www.discourse.org", "GPL-2.0", "https://github.com/discourse/discourse"),
    "passerelles": ("Passerelles", "https://encommun.io", "", ""),
    "praxis": ("Praxis", "https://praxis.encommun.io", "", ""),
    "other": ("", "", "", ""),
}
SOFTWARE_LABELS = {k: (v[0] or N_("Autre")) for k, v in SOFTWARE_INFO.items()}


@dataclass(frozen=True)
class Entry:
    instance: Instance
    hoster: Hoster | None
    organization: Organization | None
    region: str | None
    uptime: float | None = None  # percent of the last 30 days' probes that reached it

    @property
    def place(self) -> residency.Residency:
        return residency.of(self.instance)

    def as_json(self) -> dict[str, Any]:
        i = self.instance
        place = self.place
        return {
            "slug": i.slug,
            "name": i.name,
            "software": i.software,
            "software_version": i.software_version,
            "base_url": i.base_url,
            "scope": i.scope,
            "hoster": {"slug": self.hoster.slug, "name": self.hoster.name} if self.hoster else None,
            "organization": (
                {"slug": self.organization.slug, "name": self.organization.name, "kind": self.organization.kind}
                if self.organization
                else None
            ),
            "region": self.region,
            "region_name": REGIONS.get(self.region or ""),
            "health": i.health,
            "availability": availability.state(i),
            "latency_ms": i.latency_ms,
            "uptime_30d": self.uptime,
            "last_probe_at": i.last_probe_at.isoformat() if i.last_probe_at else None,
            "data_residency": {
                "declared": place.declared,
                "in_quebec": place.in_quebec,
                "data_location": place.data_location or None,
                "backup_location": place.backup_location or None,
                "hosting_provider": place.hosting_provider or None,
                "provider_type": place.provider_type or None,
                "pia_recorded": place.pia_done,
            },
        }


@dataclass(frozen=True)
class Filters:
    region: str = ""
    software: str = ""
    hoster: str = ""
    organization: str = ""


def entries(db: Session, filters: Filters | None = None) -> list[Entry]:
    """Active instances matching the filters, ordered by name."""
    f = filters or Filters()
    if (
        (f.software and f.software not in SOFTWARE_INFO)
        or (f.region and f.region not in REGIONS)
        or (f.hoster and not valid_slug(f.hoster))
        or (f.organization and not valid_slug(f.organization))
    ):
        return []
    query = (
        select(Instance, Hoster, Organization)
        .join(Hoster, col(Instance.hoster_id) == Hoster.id, isouter=True)
        .join(Organization, col(Instance.organization_id) == Organization.id, isouter=True)
        .where(Instance.status == "active")
        .order_by(col(Instance.name))
    )
    if f.software:
        query = query.where(Instance.software == f.software)
    if f.hoster:
        query = query.where(Hoster.slug == f.hoster)
    if f.organization:
        linked = (
            select(InstanceLink.instance_id)
            .join(Organization, Organization.id == InstanceLink.organization_id)  # type: ignore[arg-type]
            .where(Organization.slug == f.organization, InstanceLink.status == "active")
        )
        query = query.where(or_(col(Organization.slug) == f.organization, col(Instance.id).in_(linked)))
    found = []
    for instance, hoster, organization in db.exec(query.limit(2000)):
        region = (organization.region if organization else None) or (hoster.region if hoster else None)
        if f.region and region != f.region:
            continue
        found.append(Entry(instance, hoster, organization, region))
    shares = availability.uptime(db, [e.instance.id or 0 for e in found])
    return [Entry(e.instance, e.hoster, e.organization, e.region, shares.get(e.instance.id or 0)) for e in found]


def choices(db: Session) -> dict[str, list[tuple[str, str]]]:
    """Filter options: regions, software, active hosters, organizations and territories."""
    hosters = db.exec(select(Hoster.slug, Hoster.name).where(Hoster.status == "active").order_by(col(Hoster.name)))
    orgs = db.exec(select(Organization.slug, Organization.name).order_by(col(Organization.name)).limit(500))
    return {
        "region": [(code, f"{code} — {name}") for code, name in REGIONS.items()],
        "software": list(SOFTWARE_LABELS.items()),
        "hoster": [(s, n) for s, n in hosters],
        "organization": [(s, n) for s, n in orgs],
    }


def as_json(db: Session, issuer: str, filters: Filters | None = None) -> dict[str, Any]:
    items = [e.as_json() for e in entries(db, filters)]
    return {
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "issuer": issuer,
        "count": len(items),
        "instances": items,
        "statoolinfos": f"{issuer}{STATOOL_PREFIX}/federation.properties",
    }


def page(db: Session, filters: Filters) -> dict[str, Any]:
    """What the directory page shows: the matching entries and the filter choices."""
    return {"entries": entries(db, filters), "choices": choices(db)}
