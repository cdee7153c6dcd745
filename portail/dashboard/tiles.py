"""Which instances this member sees on their home page and in the menu, and in what order.

A member sees every **active** instance that is
- central (``scope == "central"``),
- registered for one of their organizations (``Instance.organization_id`` in their active memberships),
- linked to one of them by an active ``InstanceLink``,
- registered for, or linked to, their territory (``Member.territory_id``).

Cost: a fixed number of queries, each an index lookup by member or by the member's organizations
(membership.member_id, instance.scope, instance.organization_id, instance_link.organization_id,
hoster.id, tile_preference.member_id): nothing here reads rows the member cannot see, so the page
costs the same in a federation of ten instances or of ten thousand. ``status`` is filtered in
Python on purpose, so that no planner prefers the unselective ``ix_instance_status``.

Order: pinned tiles first, then the others; within each group the member's saved positions, then
names. Moving a tile writes the positions of the member's tiles (a few rows).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import union_all
from sqlmodel import Session, col, select

from portail.accounts.models import Member, Membership, Organization
from portail.dashboard.models import TilePreference
from portail.db import utcnow
from portail.federation import availability
from portail.federation.models import Hoster, Instance, InstanceLink

SOFTWARE_LABELS = {
    "nextcloud": "Nextcloud",
    "matrix": "Matrix",
    "passerelles": "Passerelles",
    "praxis": "Praxis",
    "discourse": "Discourse",
    "other": "",
}
# What members also call each software when they search their tools: the server's name (Synapse is
# Matrix), the app they open (Element) and what it is for, in French and English.
SOFTWARE_ALIASES = {
    "nextcloud": "fichiers files agenda calendrier calendar contacts",
    "matrix": "synapse element clavardage chat messagerie",
    "passerelles": "communautés de pratique communities of practice",
    "praxis": "savoirs connaissances knowledge base wiki",
    "discourse": "forum",
    "other": "",
}
NOT_PLACED = 1_000_000


@dataclass(frozen=True)
class Tile:
    instance_id: int
    slug: str
    name: str
    software: str
    software_label: str
    base_url: str
    open_url: str
    hoster: str | None
    health: availability.State  # demo | new | up | down (federation/availability.py)
    latency_ms: int | None
    reason: str  # central | organization | territory
    served_by: str | None  # the organization or territory through which the member sees it
    pinned: bool
    position: int | None
    description: str = ""  # what the hoster says the tool is for (French)
    description_en: str = ""  # its English version ("" shows the French one)

    @property
    def search_text(self) -> str:
        """What the search box matches: name, software and its other names, host name, hoster,
        organization, and the tool's description in either language."""
        host = urlsplit(self.base_url).hostname or ""
        parts = [
            self.name,
            self.software_label,
            SOFTWARE_ALIASES.get(self.software, ""),
            host,
            self.hoster,
            self.served_by,
            self.description,
            self.description_en,
        ]
        return " ".join(filter(None, parts))

    @property
    def sort_key(self) -> tuple[bool, int, str]:
        return (not self.pinned, NOT_PLACED if self.position is None else self.position, self.name.casefold())


@dataclass(frozen=True)
class Circles:
    """The member's organizations (active memberships) and territory, read once per page."""

    organizations: dict[int, Organization]
    territory: Organization | None

    @property
    def ids(self) -> list[int]:
        ids = list(self.organizations)
        if self.territory is not None and self.territory.id not in self.organizations:
            ids.append(self.territory.id or 0)
        return ids


def open_url(instance: Instance) -> str:
    """Where "open" sends the member: the tool's own OIDC login, so that one click logs them in.

    ``login_url`` (set by the hoster or instances.toml) wins. Otherwise, per software:
    Nextcloud ``user_oidc`` starts a login at ``/index.php/apps/user_oidc/login/{providerId}``, where
    ``providerId`` is the *numeric* id Nextcloud gave the provider: used when
    ``provider_identifier`` is numeric or ``extra["user_oidc_provider_id"]`` is set, else the base
    URL (a Nextcloud with one provider and ``allow_multiple_user_backends=0`` redirects by itself);
    Discourse ``/auth/oidc``; Matrix, Passerelles, Praxis and others: the base URL (a Matrix
    homeserver's SSO redirect needs a client's ``redirectUrl``: set ``login_url`` to the Element URL).
    """
    if instance.login_url:
        return instance.login_url
    base = instance.base_url.rstrip("/")
    if instance.software == "nextcloud":
        provider = str(instance.extra.get("user_oidc_provider_id") or instance.provider_identifier or "")
        if provider.isdigit():
            return f"{base}/index.php/apps/user_oidc/login/{provider}"
        return instance.base_url
    if instance.software == "discourse":
        return f"{base}/auth/oidc"
    return instance.base_url


def circles_of(db: Session, member: Member) -> Circles:
    org_ids = [
        organization_id
        for organization_id, status in db.exec(
            select(Membership.organization_id, Membership.status).where(Membership.member_id == member.id)
        )
        if status == "active"
    ]
    wanted = [*org_ids, *([member.territory_id] if member.territory_id else [])]
    found = {o.id: o for o in db.exec(select(Organization).where(col(Organization.id).in_(wanted)))} if wanted else {}
    territory = found.get(member.territory_id) if member.territory_id else None
    return Circles(
        organizations={i: found[i] for i in org_ids if i in found},
        territory=territory,
    )


def visible_instances(db: Session, circles: Circles) -> list[tuple[Instance, str, Organization | None]]:
    """Active instances this member may use, each with why (reason, through which organization)."""
    ids = circles.ids
    links: dict[int, int] = {}
    if ids:
        for instance_id, organization_id, status in db.exec(
            select(InstanceLink.instance_id, InstanceLink.organization_id, InstanceLink.status).where(
                col(InstanceLink.organization_id).in_(ids)
            )
        ):
            if status == "active":
                links.setdefault(instance_id, organization_id)
    # One round trip, one index per branch (UNION ALL of whole rows: no join against the whole
    # instance table, which PostgreSQL would otherwise choose); duplicates are dropped below.
    wanted = [select(Instance).where(Instance.scope == "central")]
    if ids:
        wanted.append(select(Instance).where(col(Instance.organization_id).in_(ids)))
    if links:
        wanted.append(select(Instance).where(col(Instance.id).in_(list(links))))
    statement = union_all(*wanted) if len(wanted) > 1 else wanted[0]
    unique: dict[int, Instance] = {}
    for instance in db.execute(select(Instance).from_statement(statement)).scalars():
        unique.setdefault(instance.id or 0, instance)
    rows = list(unique.values())
    known: dict[int, Organization] = dict(circles.organizations)
    if circles.territory is not None:
        known[circles.territory.id or 0] = circles.territory
    result: list[tuple[Instance, str, Organization | None]] = []
    for instance in rows:
        if instance.status != "active":
            continue
        if instance.scope == "central":
            result.append((instance, "central", None))
            continue
        via_id = instance.organization_id if instance.organization_id in known else links.get(instance.id or 0)
        via = known.get(via_id or 0)
        if via is None:
            continue
        reason = "territory" if circles.territory is not None and via.id == circles.territory.id else "organization"
        result.append((instance, reason, via))
    return result


def tiles_for(db: Session, member: Member, circles: Circles | None = None) -> list[Tile]:
    """The member's tiles, in their order."""
    circles = circles or circles_of(db, member)
    visible = visible_instances(db, circles)
    hoster_ids = {i.hoster_id for i, _r, _o in visible if i.hoster_id is not None}
    hosters = (
        dict(db.exec(select(Hoster.id, Hoster.name).where(col(Hoster.id).in_(hoster_ids))).all()) if hoster_ids else {}
    )
    prefs = {p.instance_id: p for p in db.exec(select(TilePreference).where(TilePreference.member_id == member.id))}
    tiles = []
    for instance, reason, via in visible:
        pref = prefs.get(instance.id or 0)
        tiles.append(
            Tile(
                instance_id=instance.id or 0,
                slug=instance.slug,
                name=instance.name,
                software=instance.software if instance.software in SOFTWARE_LABELS else "other",
                software_label=SOFTWARE_LABELS.get(instance.software, ""),
                base_url=instance.base_url,
                open_url=open_url(instance),
                hoster=hosters.get(instance.hoster_id) if instance.hoster_id else None,
                health=availability.state(instance),
                latency_ms=instance.latency_ms,
                reason=reason,
                served_by=via.name if via else None,
                pinned=bool(pref and pref.pinned),
                position=pref.position if pref else None,
                description=instance.description or "",
                description_en=instance.description_en or "",
            )
        )
    return sorted(tiles, key=lambda t: t.sort_key)


def fold(text: str) -> str:
    """Case- and accent-insensitive form used by the search box (é = e = É)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def search(tiles: list[Tile], query: str) -> list[Tile]:
    """Tiles whose ``search_text`` (name, software and its other names, host, hoster, organization)
    contains every word of ``query``."""
    words = fold(query).split()
    if not words:
        return tiles
    found = []
    for tile in tiles:
        haystack = fold(tile.search_text)
        if all(word in haystack for word in words):
            found.append(tile)
    return found


# ---------------------------------------------------------------- pin and reorder


def _save_order(db: Session, member_id: int, ordered: list[Tile], pinned: dict[int, bool]) -> None:
    prefs = {p.instance_id: p for p in db.exec(select(TilePreference).where(TilePreference.member_id == member_id))}
    now = utcnow()
    for position, tile in enumerate(ordered):
        pref = prefs.get(tile.instance_id) or TilePreference(member_id=member_id, instance_id=tile.instance_id)
        pref.pinned = pinned.get(tile.instance_id, tile.pinned)
        pref.position = position
        pref.updated_at = now
        db.add(pref)


def arrange(db: Session, member: Member, slug: str, action: str) -> Tile | None:
    """Apply ``pin``, ``unpin``, ``up`` or ``down`` to one of the member's tiles.

    Returns the tile, or None when the member cannot see that instance (or the action is unknown).
    Moves stay within the tile's group (pinned or not); pinning puts the tile last among the pinned.
    """
    tiles = tiles_for(db, member)
    index = next((i for i, t in enumerate(tiles) if t.slug == slug), None)
    if index is None or action not in ("pin", "unpin", "up", "down"):
        return None
    tile = tiles[index]
    pinned: dict[int, bool] = {}
    ordered = list(tiles)
    if action in ("pin", "unpin"):
        pinned[tile.instance_id] = action == "pin"
        ordered.pop(index)
        group_end = sum(1 for t in ordered if t.pinned)
        ordered.insert(group_end, tile)  # last of the pinned, or first of the others
    else:
        other = index - 1 if action == "up" else index + 1
        if 0 <= other < len(ordered) and ordered[other].pinned == tile.pinned:
            ordered[index], ordered[other] = ordered[other], ordered[index]
    _save_order(db, member.id or 0, ordered, pinned)
    return tile
