"""Tables of the notification hub.

- ``Notification``: one thing a tool told one member. ``(instance_id, external_id)`` is unique, so
  every delivery (push or pull) is idempotent. Pulled notifications get ``external_id`` =
  ``"<member id>:<the source's id>"`` because a source's id (a Matrix event id) can concern several
  members; pushed ones keep the instance's own id, which the push contract makes unique per instance.
- ``NotificationPreference``: per member × instance, on/off and the email digest (none|daily|weekly).
- ``SourceLink``: a member's credential for a pulled source (Matrix device + access token, Discourse
  User API key), sealed at rest (``sealing.py``).
- ``SourceState``: what the aggregator remembers between pulls: per (member, instance) the ETag or
  since-token, and per instance (``member_id`` NULL) the circuit breaker and the feed cursor.
- ``DiscourseKeyRequest``: one pending Discourse User API key request (nonce, sealed RSA private key),
  deleted when its callback arrives (single use) or when stale (``user_api_keys.py``).
- ``PushCounter``: per-instance, per-minute counters of the push API's rate limit (when no Redis).
- ``MatrixPusher``: the HTTP pusher Portail registered on a linked member's homeserver (Push Gateway
  API): only a SHA-256 hash of its pushkey, and whether the homeserver accepted it (``gateway.py``).
- ``WebhookEvent``: the ``X-Discourse-Event-Id`` of each webhook call accepted, per instance, so a
  replayed call is refused (``webhooks.py``); kept ``notification_retention_days``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portail.db import utcnow

DIGESTS = ("none", "daily", "weekly")
LINK_KINDS = ("matrix", "discourse")


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("instance_id", "external_id", name="uq_notification_instance_external"),
        Index("ix_notification_member_created", "member_id", "created_at"),
        Index("ix_notification_member_unread", "member_id", "read_at", "dismissed_at"),
        Index("ix_notification_received_id", "received_at", "id"),  # the purge's keyset walk, oldest first
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    instance_id: int = Field(foreign_key="instance.id", index=True)
    external_id: str = Field(max_length=255)
    kind: str = Field(default="info", max_length=40)  # the "type" of the API: mention, reply, message…
    title: str = Field(max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    link: str | None = Field(default=None, max_length=1000)
    origin: str = Field(default="push", max_length=10)  # push | matrix | nextcloud | discourse | feed
    created_at: dt.datetime = Field(default_factory=utcnow)  # when the tool says it happened
    received_at: dt.datetime = Field(default_factory=utcnow)
    read_at: dt.datetime | None = None
    dismissed_at: dt.datetime | None = None


class NotificationPreference(SQLModel, table=True):
    __tablename__ = "notification_preference"
    __table_args__ = (
        UniqueConstraint("member_id", "instance_id", name="uq_notification_preference"),
        Index("ix_notification_preference_digest_member", "digest", "member_id"),  # digests' keyset walk
        Index("ix_notification_preference_instance_member", "instance_id", "member_id"),  # a feed's followers
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    enabled: bool = Field(default=True)
    digest: str = Field(default="none", max_length=10, index=True)  # none | daily | weekly
    last_digest_at: dt.datetime | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)


class SourceLink(SQLModel, table=True):
    """A member's credential for a pulled source; ``secret_sealed`` is Fernet-encrypted."""

    __tablename__ = "notification_source_link"
    __table_args__ = (
        UniqueConstraint("member_id", "instance_id", name="uq_notification_source_link"),
        Index("ix_notification_source_link_remote", "instance_id", "remote_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    kind: str = Field(max_length=20)  # matrix | discourse
    account: str = Field(default="", max_length=255)  # Matrix user id, Discourse username
    device_id: str | None = Field(default=None, max_length=255)
    remote_id: str | None = Field(default=None, max_length=64)  # Discourse's user id, learnt from a pull
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)


class SourceState(SQLModel, table=True):
    """Pull cursor (``member_id`` set) or per-instance breaker and feed cursor (``member_id`` NULL)."""

    __tablename__ = "notification_source_state"
    __table_args__ = (
        UniqueConstraint("instance_id", "member_id", name="uq_notification_source_state"),
        Index("ix_notification_source_state_due", "fetched_at"),  # the schedule's most-stale-first walk
    )

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    etag: str | None = Field(default=None, max_length=255)
    since: str | None = Field(default=None, max_length=255)  # Matrix next_token, last feed item…
    fetched_at: dt.datetime | None = None
    status: str = Field(default="unknown", max_length=20)  # ok | unreachable | error | unauthorized
    last_error: str = Field(default="", max_length=500)
    # -- circuit breaker (per-instance row only)
    breaker: str = Field(default="closed", max_length=10)  # closed | open | half-open
    failures: int = Field(default=0)
    retry_at: dt.datetime | None = None
    latency_ms: int | None = None


class PushCounter(SQLModel, table=True):
    """Notifications pushed by one instance in one minute (rate limit without Redis)."""

    __tablename__ = "notification_push_counter"

    instance_id: int = Field(primary_key=True, foreign_key="instance.id")
    window: int = Field(primary_key=True)  # unix minute
    count: int = Field(default=0)


class DiscourseKeyRequest(SQLModel, table=True):
    """A pending User API key request: its nonce and sealed private key; deleted on first use."""

    __tablename__ = "notification_discourse_key_request"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    instance_id: int = Field(foreign_key="instance.id")
    nonce: str = Field(max_length=64)
    private_key_sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, index=True)


class MatrixPusher(SQLModel, table=True):
    """The pusher of one member's linked Matrix account: ``active`` (the homeserver pushes, no pull) or
    ``refused`` (the homeserver said no: the account is pulled, and the preferences page says so)."""

    __tablename__ = "notification_matrix_pusher"
    __table_args__ = (UniqueConstraint("member_id", "instance_id", name="uq_notification_matrix_pusher"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    pushkey_hash: str = Field(max_length=64, unique=True)  # hex SHA-256 of the pushkey
    status: str = Field(default="active", max_length=10)  # active | refused
    error: str = Field(default="", max_length=300)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_push_at: dt.datetime | None = None


class WebhookEvent(SQLModel, table=True):
    """One Discourse webhook delivery accepted (its event id), remembered to refuse replays."""

    __tablename__ = "notification_webhook_event"
    __table_args__ = (UniqueConstraint("instance_id", "event_id", name="uq_notification_webhook_event"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id")
    event_id: str = Field(max_length=40)
    received_at: dt.datetime = Field(default_factory=utcnow, index=True)
