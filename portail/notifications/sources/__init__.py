"""Pull adapters, one module per software (matrix, nextcloud, discourse, feed).

Every adapter exposes ``async def pull(http, job) -> PullResult`` (and optionally ``dismiss``): it
reads one member's notifications (or one instance's feed) from one instance, honouring the cursor
it left last time (ETag, since-token), and raises ``SourceError`` saying whether the instance was
unreachable, answered garbage, or refused the credential. Adapters never touch the database: the
aggregator hands them a ``PullJob`` and stores what they return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from portail.notifications.fetcher import Fetcher, SourceError

__all__ = ["Dismiss", "Item", "Pull", "PullJob", "PullResult", "SourceError"]


@dataclass(frozen=True)
class PullJob:
    instance_id: int
    instance_name: str
    software: str
    base_url: str
    member_id: int | None = None  # None: an instance-level pull (feeds)
    url: str | None = None  # the feed's URL
    credential: str | None = None  # bearer token / User API key, already unsealed
    account: str = ""
    etag: str | None = None
    since: str | None = None


@dataclass(frozen=True)
class Item:
    """One notification as a source describes it (plain text already)."""

    native_id: str
    title: str
    body: str = ""
    kind: str = "info"
    link: str | None = None
    created_at: dt.datetime | None = None
    read: bool = False


@dataclass
class PullResult:
    items: list[Item] = field(default_factory=list)
    etag: str | None = None
    since: str | None = None
    not_modified: bool = False
    account_id: str | None = None  # the member's id at the source, when its answer tells (Discourse)


Pull = Callable[[Fetcher, PullJob], Awaitable[PullResult]]
Dismiss = Callable[[Fetcher, PullJob, str], Awaitable[bool]]
