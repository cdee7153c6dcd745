"""Portail's own NodeInfo (nodeinfo.diaspora.software, schema 2.1): ``/.well-known/nodeinfo`` links
``/nodeinfo/2.1``, which says what this server is (software ``portail`` and its version, open
registrations, member counts) so that directories and crawlers of free-software servers — and the
federation's own prober — can describe it like any other node.

``protocols``: the 2.1 schema lists federation protocols (activitypub, diaspora, xmpp, …) and asks
for at least one; Portail speaks none of them (OpenID Connect is not in the list), so the list is
empty rather than false, as servers that do not federate (e.g. Forgejo without federation) publish it.
``usage.users``: accounts not disabled; active ones are those with a browser session seen in the last
30 / 180 days. The counts are cached for ``CACHE_SECONDS`` so a crawler costs two small queries per
ten minutes at most, whatever the number of members.
"""

from __future__ import annotations

import datetime as dt
import time
from importlib import metadata
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.db import utcnow
from portail.federation.models import Instance

SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
PATH = "/nodeinfo/2.1"
CACHE_SECONDS = 600
# Public aggregate counts, up to CACHE_SECONDS old on each node, keyed by (issuer, database): no decision reads them.
_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}


def links(settings: Settings) -> dict[str, Any]:
    """The discovery document at ``/.well-known/nodeinfo``."""
    return {"links": [{"rel": SCHEMA, "href": f"{settings.issuer}{PATH}"}]}


def _version() -> str:
    try:
        return metadata.version("portail")
    except metadata.PackageNotFoundError:
        return "0"


def _active(db: Session, days: int) -> int:
    since = utcnow() - dt.timedelta(days=days)
    query = select(func.count(func.distinct(LoginSession.member_id))).where(col(LoginSession.last_seen_at) >= since)
    return int(db.exec(query).one())


def document(db: Session, settings: Settings) -> dict[str, Any]:
    """The NodeInfo 2.1 document of this Portail."""
    key = (settings.issuer, settings.database_url)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    members = int(db.exec(select(func.count()).select_from(Member).where(col(Member.disabled_at).is_(None))).one())
    instances = int(db.exec(select(func.count()).select_from(Instance).where(Instance.status == "active")).one())
    body: dict[str, Any] = {
        "version": "2.1",
        "software": {
            "name": "portail",
            "version": _version(),
            "homepage": settings.issuer,
        },
        "protocols": [],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": True,
        "usage": {"users": {"total": members, "activeMonth": _active(db, 30), "activeHalfyear": _active(db, 180)}},
        "metadata": {
            "nodeName": settings.federation_name,
            "openidConfiguration": f"{settings.issuer}/.well-known/openid-configuration",
            "federationDirectory": f"{settings.issuer}/federation/directory.json",
            "statoolinfos": f"{settings.issuer}/federation/statoolinfos/federation.properties",
            "activeInstances": instances,
        },
    }
    _cache[key] = (time.monotonic(), body)
    return body
