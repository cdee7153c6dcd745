"""The public directory of the federation: active instances with their hoster, the organization or
territory they serve, their region and health; as a page, as JSON, and as CHATONS StatoolInfos
``.properties`` files (integrations.md §6.1).

StatoolInfos export: one federation file (``federation.properties``) whose ``subs.<hoster>`` keys
link one organization file per active hoster (``hosters/<slug>.properties``), whose ``subs.<instance>``
keys link one service file per active instance (``services/<slug>.properties``), so that existing
CHATONS tooling (stats.chatons.org's crawler) can crawl the Québec federation. Demo instances
(``availability.py``) are listed on the page and in the JSON, marked as such, but never exported:
a crawler must not count a service that does not exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, or_, select

from portail.accounts.models import Organization
from portail.accounts.regions import REGIONS
from portail.db import utcnow
from portail.federation import availability
from portail.federation.models import Hoster, Instance, InstanceLink
from portail.federation.rules import valid_slug
from portail.web import N_

STATOOL_PREFIX = "/federation/statoolinfos"
PROTOCOL = "ChatonsInfos-0.5"
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

    def as_json(self) -> dict[str, Any]:
        i = self.instance
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


# ---------------------------------------------------------------- StatoolInfos


def _escape(value: object) -> str:
    """Java ``.properties`` value: backslashes doubled, line breaks as ``\\n`` (one value per line)."""
    return str(value).replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n")


def _properties(sections: list[tuple[str, list[tuple[str, object]]]]) -> str:
    lines: list[str] = []
    for title, pairs in sections:
        lines.append(f"# [{title}]")
        lines.extend(f"{key} = {_escape(value)}" for key, value in pairs if value not in (None, ""))
        lines.append("")
    return "\n".join(lines)


def _date(value: dt.datetime | None) -> str:
    return value.date().isoformat() if value else ""


def _file(kind: str, url: str) -> tuple[str, list[tuple[str, object]]]:
    now = utcnow().replace(microsecond=0).isoformat().replace("+00:00", "")
    return "File", [
        ("file.class", kind),
        ("file.protocol", PROTOCOL),
        ("file.datetime", now),
        ("file.generator", "Portail En commun"),
        ("file.url", url),
    ]


def federation_file(db: Session, issuer: str, name: str = "Fédération En commun (Québec)") -> str:
    hosters = db.exec(select(Hoster).where(Hoster.status == "active").order_by(col(Hoster.slug))).all()
    base = f"{issuer}{STATOOL_PREFIX}"
    return _properties(
        [
            _file("federation", f"{base}/federation.properties"),
            (
                "Federation",
                [
                    ("federation.name", name),
                    ("federation.description", "Fédération québécoise d’hébergeurs de logiciels libres d’En commun"),
                    ("federation.website", f"{issuer}/federation/directory"),
                    ("federation.country.name", "Canada"),
                    ("federation.country.code", "CA"),
                ],
            ),
            ("Subs", [(f"subs.{h.slug}", f"{base}/hosters/{h.slug}.properties") for h in hosters]),
        ]
    )


def organization_file(db: Session, issuer: str, hoster: Hoster) -> str:
    services = [
        i
        for i in db.exec(
            select(Instance)
            .where(Instance.hoster_id == hoster.id, Instance.status == "active")
            .order_by(col(Instance.slug))
        )
        if availability.state(i) != "demo"
    ]
    base = f"{issuer}{STATOOL_PREFIX}"
    return _properties(
        [
            _file("organization", f"{base}/hosters/{hoster.slug}.properties"),
            (
                "Organization",
                [
                    ("organization.name", hoster.name),
                    ("organization.description", hoster.description.splitlines()[0] if hoster.description else ""),
                    ("organization.website", hoster.website),
                    ("organization.status.level", "ACTIVE" if hoster.status == "active" else "AWAY"),
                    ("organization.startdate", _date(hoster.decided_at)),
                    ("organization.country.name", "Canada"),
                    ("organization.country.code", "CA"),
                    ("organization.geography", REGIONS.get(hoster.region or "", "")),
                ],
            ),
            ("Subs", [(f"subs.{i.slug}", f"{base}/services/{i.slug}.properties") for i in services]),
        ]
    )


def service_file(db: Session, issuer: str, instance: Instance) -> str:
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    name, website, licence, source = SOFTWARE_INFO.get(instance.software, SOFTWARE_INFO["other"])
    status = {"up": "OK", "degraded": "WARNING", "down": "ERROR"}.get(instance.health, "OK")
    return _properties(
        [
            _file("service", f"{issuer}{STATOOL_PREFIX}/services/{instance.slug}.properties"),
            (
                "Service",
                [
                    ("service.name", instance.name),
                    ("service.website", instance.base_url),
                    ("service.startdate", _date(instance.approved_at or instance.created_at)),
                    ("service.status.level", status),
                    ("service.registration", "Member"),
                    ("service.registration.load", "OPEN"),
                    ("service.install.type", "DISTRIBUTION"),
                ],
            ),
            (
                "Software",
                [
                    ("software.name", name or instance.software),
                    ("software.website", website),
                    ("software.license.name", licence),
                    ("software.source.url", source),
                    ("software.version", instance.software_version),
                ],
            ),
            ("Host", [("host.name", hoster.name if hoster else ""), ("host.country.code", "CA")]),
        ]
    )


def page(db: Session, filters: Filters) -> dict[str, Any]:
    """What the directory page shows: the matching entries and the filter choices."""
    return {"entries": entries(db, filters), "choices": choices(db)}


def hoster_properties(db: Session, issuer: str, slug: str) -> str | None:
    if not valid_slug(slug):
        return None
    hoster = db.exec(select(Hoster).where(Hoster.slug == slug, Hoster.status == "active")).first()
    return organization_file(db, issuer, hoster) if hoster else None


def service_properties(db: Session, issuer: str, slug: str) -> str | None:
    if not valid_slug(slug):
        return None
    instance = db.exec(select(Instance).where(Instance.slug == slug, Instance.status == "active")).first()
    return service_file(db, issuer, instance) if instance and availability.state(instance) != "demo" else None
