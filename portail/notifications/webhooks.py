"""Discourse webhooks: a forum pushes its members' notifications to Portail.

The forum's administrator creates a webhook (Admin → API → Webhooks; the Discourse snippet of the
node's configuration page gives every field) whose payload URL is
``{issuer}/api/v1/notifications/discourse/{instance slug}``, content type ``application/json``, with
the "Notification" event and the secret Portail derived for that instance
(``federation.provisioning.discourse_webhook_secret``). Discourse then posts, as its
``Jobs::EmitWebHookEvent`` does, the body ``{"notification": <NotificationSerializer>}`` with headers
``X-Discourse-Event-Type: notification``, ``X-Discourse-Event: notification_created``,
``X-Discourse-Event-Id: <id of the WebHookEvent row>`` and ``X-Discourse-Event-Signature:
sha256=<hex HMAC-SHA256 of the raw body with the secret>``; a ``ping`` (the admin's "Ping" button)
has body ``{"ping": "OK"}``.

Portail checks the signature in constant time before anything else, refuses an event id it has
already accepted from that instance (a replay; ids are remembered ``notification_retention_days``),
and delivers the notification to the member whose link carries that Discourse ``user_id``
(``SourceLink.remote_id``, learnt from the member's first pull). The notification is stored as the
pull would store it (same ``external_id``), so webhook and pull never duplicate one another; once a
forum's webhook has delivered, members whose Discourse id is known are no longer pulled
(``planning.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from portail.config import Settings
from portail.db import utcnow
from portail.federation import provisioning
from portail.federation.models import Instance
from portail.notifications import inbox, planning
from portail.notifications.fetcher import SourceError
from portail.notifications.models import SourceLink, WebhookEvent
from portail.notifications.push import PushRejected
from portail.notifications.sources import discourse

SIGNATURE_PREFIX = "sha256="
EVENT_TYPE = "notification"


class WebhookRejected(PushRejected):
    """The call is refused (JSON error shape)."""


@dataclass(frozen=True)
class Hook:
    instance_id: int
    base_url: str
    secret: str


def hook_for(session: Session, settings: Settings, slug: str) -> Hook:
    """The active Discourse instance this webhook URL names, with its secret."""
    instance = session.exec(select(Instance).where(Instance.slug == slug)).first()
    if instance is None or instance.software != "discourse" or instance.status != "active":
        raise WebhookRejected("not_found", "No active Discourse instance has this address", 404)
    secret = provisioning.discourse_webhook_secret(settings.secret_key, instance)
    return Hook(instance.id or 0, instance.base_url.rstrip("/"), secret)


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``, compared in constant time."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len(SIGNATURE_PREFIX) :].strip().lower().encode())


def event_id_of(header: str | None) -> str:
    value = (header or "").strip()
    if not value or len(value) > 40 or not value.isascii() or not value.isalnum():
        raise WebhookRejected("invalid_request", "X-Discourse-Event-Id is missing or malformed", 400)
    return value


def remember(session: Session, instance_id: int, event_id: str) -> None:
    """Record the event id; ``WebhookRejected`` (409) if this instance already sent it."""
    known = session.exec(
        select(WebhookEvent.id).where(WebhookEvent.instance_id == instance_id, WebhookEvent.event_id == event_id)
    ).first()
    if known is not None:
        raise WebhookRejected("replayed", "This webhook event was already received", 409)
    try:
        with session.begin_nested():
            session.add(WebhookEvent(instance_id=instance_id, event_id=event_id))
    except IntegrityError as exc:  # the same event, concurrently
        raise WebhookRejected("replayed", "This webhook event was already received", 409) from exc


def receive(session: Session, hook: Hook, event_id: str, payload: Any) -> list[inbox.Delivered]:
    """Remember the event, then deliver its notification to the member Discourse names, if linked."""
    raw = payload.get("notification") if isinstance(payload, dict) else None
    if not isinstance(raw, dict) or not isinstance(raw.get("user_id"), int) or not isinstance(raw.get("id"), int):
        raise WebhookRejected("invalid_request", 'The body must be {"notification": {"id", "user_id", …}}', 400)
    remember(session, hook.instance_id, event_id)
    member_ids = list(
        session.exec(
            select(SourceLink.member_id).where(
                SourceLink.instance_id == hook.instance_id,
                SourceLink.remote_id == str(raw["user_id"]),
                SourceLink.kind == "discourse",
            )
        ).all()
    )
    muted = inbox.muted(session, set(member_ids), hook.instance_id)
    wanted = [m for m in member_ids if m not in muted]
    if not wanted:
        return []
    try:
        item = discourse.notification_item(hook.base_url, raw)
    except SourceError as exc:
        raise WebhookRejected("invalid_request", exc.message, 400) from exc
    rows = planning.source_rows([item], wanted, hook.instance_id, hook.base_url, "discourse", utcnow())
    return inbox.deliver(session, rows)


def purge(session: Session, retention_days: int) -> int:
    """Forget event ids older than the retention, as the notifications they delivered are."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    result = session.execute(delete(WebhookEvent).where(col(WebhookEvent.received_at) < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
