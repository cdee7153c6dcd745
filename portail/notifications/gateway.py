"""Portail as a Matrix push gateway: linked members' homeservers push their notifications to Portail.

Registration (client-server API, "Push notifications" → ``POST /_matrix/client/v3/pushers/set``):
when a member links their Matrix account (``linking.py``), Portail registers an HTTP pusher on their
homeserver with the device Portail got at linking: ``kind: http``, ``app_id`` ``ca.encommun.portail``,
a fresh random pushkey (32 bytes, unguessable, one per member and instance; only its SHA-256 is
stored) and ``data.url`` = ``{issuer}/_matrix/push/v1/notify`` (Synapse requires exactly that path).
``data.format`` is left unset, so the homeserver sends the event's sender, type and content. The
account stops being pulled (``planning.py``) once its homeserver has pushed once: a pusher the
homeserver accepted but cannot reach (its ``ip_range_blacklist`` forbids Portail's address, a
firewall…) never silences the member. A registration the homeserver refuses is recorded
``refused``: that account goes on being pulled and the preferences page says so. Unlinking
removes the pusher (``kind: null``).

Receiving (Push Gateway API v1, ``POST /_matrix/push/v1/notify``): the body is
``{"notification": {event_id, room_id, type, sender, content, counts, devices: [{app_id, pushkey,
pushkey_ts, data, tweaks}]}}``. Each device's pushkey is looked up by its hash; an unknown one is
answered in ``{"rejected": [pushkey, …]}`` (the homeserver then deletes that pusher, spec
"Push Gateway API"). A known pushkey whose call does not come from one of the linked homeserver's
addresses is refused (``notification_push_gateway_check_source``), and each instance's pushes count
against the push API's per-minute allowance (``ratelimit.py``). The notification is stored as a
pull would have stored it (same ``external_id``), so a push and a pull of one event are one row.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, col, select

from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation.models import Instance
from portail.notifications import inbox, planning
from portail.notifications.fetcher import Fetcher, SourceError
from portail.notifications.models import MatrixPusher, SourceLink
from portail.notifications.push import PushRejected
from portail.notifications.sources import matrix

APP_ID = "ca.encommun.portail"
NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_DEVICES = 20


class GatewayRejected(PushRejected):
    """The whole call is refused (JSON error shape)."""


@dataclass(frozen=True)
class Target:
    """Whom a known pushkey designates."""

    pushkey: str
    member_id: int
    instance_id: int
    base_url: str


@dataclass(frozen=True)
class Call:
    """A parsed notify call: the notification and its devices as (pushkey, tweaks)."""

    notification: dict[str, Any]
    devices: list[tuple[str, Any]]


def notify_url(settings: Settings) -> str:
    return f"{settings.issuer.rstrip('/')}{NOTIFY_PATH}"


def hash_pushkey(pushkey: str) -> str:
    return hashlib.sha256(pushkey.encode()).hexdigest()


def parse(payload: Any) -> Call:
    notification = payload.get("notification") if isinstance(payload, dict) else None
    devices = notification.get("devices") if isinstance(notification, dict) else None
    if not isinstance(notification, dict) or not isinstance(devices, list):
        raise GatewayRejected("invalid_request", 'The body must be {"notification": {"devices": [...]}}', 400)
    if len(devices) > MAX_DEVICES:
        raise GatewayRejected("invalid_request", f"At most {MAX_DEVICES} devices per notification", 400)
    found: list[tuple[str, Any]] = []
    for device in devices:
        if not isinstance(device, dict) or not isinstance(device.get("pushkey"), str) or not device["pushkey"]:
            raise GatewayRejected("invalid_request", "Every device needs a pushkey string", 400)
        found.append((device["pushkey"][:512], device.get("tweaks")))
    return Call(notification, found)


def targets(session: Session, pushkeys: list[str]) -> dict[str, Target]:
    """The known, active pushers among ``pushkeys`` (whose link and instance still exist)."""
    hashes = {hash_pushkey(key): key for key in pushkeys}
    rows = session.exec(
        select(MatrixPusher, Instance)
        .join(Instance, col(Instance.id) == col(MatrixPusher.instance_id))
        .join(
            SourceLink,
            (col(SourceLink.member_id) == col(MatrixPusher.member_id))
            & (col(SourceLink.instance_id) == col(MatrixPusher.instance_id)),
        )
        .where(
            col(MatrixPusher.pushkey_hash).in_(list(hashes)),
            MatrixPusher.status == "active",
            Instance.status == "active",
        )
    ).all()
    return {
        hashes[pusher.pushkey_hash]: Target(
            hashes[pusher.pushkey_hash], pusher.member_id, pusher.instance_id, instance.base_url.rstrip("/")
        )
        for pusher, instance in rows
    }


async def source_matches(base_url: str, address: str | None) -> bool:
    """Is ``address`` (the caller's) one of the addresses the homeserver's host name resolves to?"""
    if not address:
        return False
    try:
        caller = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(caller, ipaddress.IPv6Address) and caller.ipv4_mapped is not None:
        caller = caller.ipv4_mapped
    host = urlsplit(base_url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return any(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) == caller for info in infos)


def receive(session: Session, call: Call, accepted: list[Target]) -> list[inbox.Delivered]:
    """Store the notification for each accepted pushkey's member (unless they turned the tool off)."""
    now = utcnow()
    delivered: list[inbox.Delivered] = []
    tweaks = dict(call.devices)
    for target in accepted:
        session.execute(
            update(MatrixPusher)
            .where(col(MatrixPusher.pushkey_hash) == hash_pushkey(target.pushkey))
            .values(last_push_at=now)
        )
        item = matrix.pushed_item(call.notification, tweaks.get(target.pushkey))
        if item is None or inbox.muted(session, {target.member_id}, target.instance_id):
            continue
        rows = planning.source_rows([item], [target.member_id], target.instance_id, target.base_url, "matrix", now)
        delivered.extend(inbox.deliver(session, rows))
    return delivered


def _record(session: Session, member_id: int, instance_id: int, pushkey_hash: str, error: str) -> None:
    row = session.exec(
        select(MatrixPusher).where(MatrixPusher.member_id == member_id, MatrixPusher.instance_id == instance_id)
    ).first() or MatrixPusher(member_id=member_id, instance_id=instance_id, pushkey_hash=pushkey_hash)
    row.pushkey_hash, row.status, row.error = pushkey_hash, "refused" if error else "active", error[:300]
    row.created_at, row.last_push_at = utcnow(), None
    session.add(row)


def pushers_of(session: Session, member_id: int) -> dict[int, MatrixPusher]:
    return {
        row.instance_id: row for row in session.exec(select(MatrixPusher).where(MatrixPusher.member_id == member_id))
    }


async def register(
    fetcher: Fetcher, db: Database, settings: Settings, member_id: int, instance_id: int, base_url: str, token: str
) -> bool:
    """Register Portail's pusher for a freshly linked account; False (and pulls) if the homeserver refused."""
    pushkey = secrets.token_urlsafe(32)
    error = ""
    try:
        await matrix.set_pusher(fetcher, base_url, token, app_id=APP_ID, pushkey=pushkey, url=notify_url(settings))
    except SourceError as exc:
        error = exc.message
    await db.run(_record, member_id, instance_id, hash_pushkey(pushkey), error)
    return not error


async def unregister(fetcher: Fetcher, settings: Settings, base_url: str, token: str) -> None:
    """Remove Portail's pusher from the homeserver (best effort: logging the device out removes it too)."""
    try:
        await matrix.remove_pusher(fetcher, base_url, token, app_id=APP_ID, url=notify_url(settings))
    except SourceError:
        pass
