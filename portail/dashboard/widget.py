"""The navigation menu ("gaufre") every tool can embed: which origins may read it, and what it says.

A tool includes ``<script src="{issuer}/widget/menu.js" defer></script>``. The script (static,
``static/widget/menu.js``) renders a button inside a shadow DOM and fetches
``{issuer}/widget/menu.json`` with ``credentials: "include"``.

Deployment (chosen and tested): **same site**. Portail and the tools live under one registrable
domain (``portail.encommun.example``, ``nuage.encommun.example`` …). Requests between them are
cross-origin but same-site, so the browser sends Portail's ``SameSite=Lax`` session cookie with the
fetch, and CORS decides who may read the answer:

- ``Access-Control-Allow-Origin`` echoes the ``Origin`` only when it is exactly the origin
  (scheme, host, port) of a registered, **active** instance's ``base_url``; with
  ``Access-Control-Allow-Credentials: true`` and ``Vary: Origin``.
- Any other origin gets 403 and no CORS header, so the browser refuses the answer to the page, and
  no member data is sent to it.

A tool on another site would need a cookie with ``SameSite=None; Secure`` (https only, and third-party
cookie blocking in browsers makes it unreliable) or a short-lived token obtained by the tool for its
member; neither is built (see the README).

Origin lookup: an equality lookup on the unique ``instance.base_url`` index for the two usual forms
(``origin`` and ``origin/``); base URLs with a path (``https://host/nextcloud``) need a prefix query,
which is asked only when the equality lookup found nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.dashboard.notification_summary import Summary
from portail.dashboard.tiles import Tile
from portail.federation.models import Instance

MAX_ORIGIN = 300


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased, default ports dropped; None if not a URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origin(db: Session, origin: str) -> bool:
    """Is ``origin`` exactly the origin of a registered, active instance?"""
    if len(origin) > MAX_ORIGIN or origin_of(origin) != origin:
        return False
    exact = db.exec(select(Instance.status).where(col(Instance.base_url).in_((origin, origin + "/")))).all()
    if "active" in exact:
        return True
    escaped = origin.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.exec(
        select(Instance.base_url).where(
            col(Instance.base_url).like(escaped + "/%", escape="\\"), Instance.status == "active"
        )
    ).all()
    return any(origin_of(url) == origin for url in rows)


def menu(
    tiles: list[Tile],
    notices: Summary,
    *,
    issuer: str,
    labels: dict[str, str],
    member_name: str,
    locale: str,
    current_origin: str | None,
) -> dict[str, Any]:
    """The JSON the menu renders; labels are already in the member's language."""
    portal = issuer.rstrip("/")
    return {
        "version": 1,
        "locale": locale,
        "portal": {"url": portal + "/", "account_url": portal + "/account"},
        "member": {"name": member_name},
        "unread": notices.unread,
        "notifications_url": portal + (notices.inbox_url or "/#notifications"),
        "tools": [
            {
                "name": tile.name,
                "software": tile.software,
                "software_label": tile.software_label,
                "url": tile.open_url,
                "icon": f"{portal}/static/icons/{tile.software}.svg",
                "hoster": tile.hoster,
                "health": tile.health,
                "pinned": tile.pinned,
                "current": current_origin is not None and origin_of(tile.base_url) == current_origin,
            }
            for tile in tiles
        ],
        "labels": labels,
    }
