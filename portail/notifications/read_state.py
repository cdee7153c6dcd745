"""Marking read in Portail marks read at the source, where the source's API has a read state.

- **Matrix** (client-server API, "Receipts", v1.4 and later): ``POST /_matrix/client/v3/rooms/{roomId}/
  receipt/m.read.private/{eventId}`` with ``{}``, sent with the member's Portail device. A *private* read
  receipt moves the member's read marker (the event and everything before it in that room is read, and
  the homeserver's ``/notifications`` then answers ``"read": true``) without telling the other members
  of the room, who never asked to know that Portail displayed a message. "Mark all read" sends one
  receipt per room, for the newest unread event (at most ``MAX_ROOMS`` rooms).
- **Discourse**: ``PUT /notifications/mark-read.json`` with ``{"id": …}``, or without an id for all.
- **Nextcloud** has no read state (only delete, which is what dismissing does); feeds and pushes have
  none either: for them reading stays in Portail.

Propagation is best effort: the inbox in Portail is the truth; a failing source is logged, never shown
as an error to the member.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlmodel import Session, col, select

from portail.config import Settings
from portail.federation.models import Instance
from portail.notifications.fetcher import Fetcher, SourceError
from portail.notifications.models import Notification, SourceLink
from portail.notifications.sealing import Unsealable, unseal
from portail.notifications.sources import PullJob, discourse, matrix

log = logging.getLogger("portail.notifications")

ORIGINS = ("matrix", "discourse")
MAX_ROOMS = 20
SCAN = 500


@dataclass(frozen=True)
class Receipt:
    """One call to make at a source: ``native_id`` None means "all" (Discourse)."""

    origin: str
    instance_id: int
    base_url: str
    credential: str
    native_id: str | None
    room_id: str | None = None


def _credentials(
    session: Session, settings: Settings, member_id: int, instance_ids: set[int]
) -> dict[int, tuple[str, str]]:
    found: dict[int, tuple[str, str]] = {}
    if not instance_ids:
        return found
    links = session.exec(
        select(SourceLink, Instance)
        .join(Instance, col(Instance.id) == SourceLink.instance_id)
        .where(SourceLink.member_id == member_id, col(SourceLink.instance_id).in_(instance_ids))
    )
    for link, instance in links:
        try:
            found[link.instance_id] = (instance.base_url.rstrip("/"), unseal(settings.secret_key, link.secret_sealed))
        except Unsealable:
            continue
    return found


def _receipt(row: Notification, credentials: dict[int, tuple[str, str]]) -> Receipt | None:
    if row.origin not in ORIGINS or ":" not in row.external_id or row.instance_id not in credentials:
        return None
    base_url, credential = credentials[row.instance_id]
    native_id = row.external_id.split(":", 1)[1]
    if row.origin == "discourse":
        return Receipt("discourse", row.instance_id, base_url, credential, native_id)
    target = matrix.room_and_event(row.link or "")
    if target is None or target[1] != native_id:
        return None
    return Receipt("matrix", row.instance_id, base_url, credential, native_id, room_id=target[0])


def for_one(session: Session, settings: Settings, member_id: int, notification_id: int) -> list[Receipt]:
    """What to send when the member reads one notification (call before marking it read)."""
    row = session.get(Notification, notification_id)
    if row is None or row.member_id != member_id or row.read_at is not None or row.origin not in ORIGINS:
        return []
    receipt = _receipt(row, _credentials(session, settings, member_id, {row.instance_id}))
    return [receipt] if receipt else []


def for_all(session: Session, settings: Settings, member_id: int, instance_id: int | None = None) -> list[Receipt]:
    """What to send for "mark all read" (call before marking): one receipt per Matrix room (its newest
    unread event) and one "all" per Discourse instance."""
    query = select(Notification).where(
        Notification.member_id == member_id,
        col(Notification.read_at).is_(None),
        col(Notification.origin).in_(ORIGINS),
    )
    if instance_id is not None:
        query = query.where(Notification.instance_id == instance_id)
    rows = list(session.exec(query.order_by(col(Notification.created_at).desc()).limit(SCAN)))
    credentials = _credentials(session, settings, member_id, {r.instance_id for r in rows})
    receipts: list[Receipt] = []
    rooms: set[tuple[int, str]] = set()
    forums: set[int] = set()
    for row in rows:  # newest first: the first event seen in a room is its newest unread one
        receipt = _receipt(row, credentials)
        if receipt is None:
            continue
        if receipt.origin == "discourse":
            if receipt.instance_id not in forums:
                forums.add(receipt.instance_id)
                receipts.append(Receipt("discourse", receipt.instance_id, receipt.base_url, receipt.credential, None))
        elif receipt.room_id and (receipt.instance_id, receipt.room_id) not in rooms and len(rooms) < MAX_ROOMS:
            rooms.add((receipt.instance_id, receipt.room_id))
            receipts.append(receipt)
    return receipts


async def _send(http: Fetcher, receipt: Receipt) -> bool:
    try:
        if receipt.origin == "matrix" and receipt.room_id and receipt.native_id:
            await matrix.mark_read(http, receipt.base_url, receipt.credential, receipt.room_id, receipt.native_id)
        elif receipt.origin == "discourse":
            job = PullJob(receipt.instance_id, "", "discourse", receipt.base_url, credential=receipt.credential)
            await discourse.mark_read(http, job, receipt.native_id)
        else:
            return False
    except SourceError as exc:
        log.info("read state not propagated to %s: %s", receipt.base_url, exc.message)
        return False
    return True


async def propagate(http: Fetcher, receipts: list[Receipt]) -> int:
    """Send the receipts concurrently; returns how many sources accepted them."""
    if not receipts:
        return 0
    results = await asyncio.gather(*(_send(http, receipt) for receipt in receipts))
    return sum(results)
