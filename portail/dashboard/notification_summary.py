"""The notifications corner of the portal: the unread count and the latest items, in one place.

This is the seam with the notifications package. Both the home page (partial
``templates/dashboard/_notifications.html``) and the navigation menu (``unread`` and
``notifications_url`` in ``/widget/menu.json``) read ``summary(db, member_id)`` and nothing else.
It reads the notification hub's inbox (``portail.notifications.inbox``): one indexed count
(``ix_notification_member_unread``) and one short indexed list (``ix_notification_member_created``),
cheap enough for the menu, which every tool's page asks for. With no notification, the partial shows
an honest empty state ("Aucune notification pour l’instant").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlmodel import Session

from portail.notifications import inbox

LATEST = 5
INBOX = "/notifications"  # the notification hub's page


@dataclass(frozen=True)
class Item:
    """One notification as the portal shows it."""

    title: str
    url: str | None
    source: str  # the instance or tool name
    at: dt.datetime
    unread: bool = True


@dataclass(frozen=True)
class Summary:
    unread: int = 0
    items: list[Item] = field(default_factory=list)
    available: bool = False  # whether a notification hub answered
    inbox_url: str | None = None  # the full inbox page (a local path)


def summary(db: Session, member_id: int, limit: int = LATEST) -> Summary:
    """The member's unread count and latest notifications (not dismissed), newest first."""
    unread = inbox.unread_count(db, member_id)
    rows = inbox.list_for(db, member_id, inbox.Filters(limit=limit))
    items = [
        Item(
            title=notification.title,
            url=notification.link if _web_link(notification.link) else None,
            source=instance.name,
            at=notification.created_at,
            unread=notification.read_at is None,
        )
        for notification, instance in rows
    ]
    return Summary(unread=unread, items=items, available=True, inbox_url=INBOX)


def _web_link(url: str | None) -> bool:
    """Only http(s) links from tools become ``href`` (never ``javascript:`` or ``data:``)."""
    return bool(url) and urlsplit(url or "").scheme in ("http", "https")
