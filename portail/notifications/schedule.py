"""What the background pass pulls next: feeds once per feed, members by activity, at constant cost.

- **Feeds** are pulled once per feed, not once per subscriber: ``due_feeds`` lists the instances
  whose feed (``SourceState`` row with ``member_id`` NULL) is older than
  ``notification_refresh_seconds`` or never read, and that someone follows; the pull is conditional
  (ETag / Last-Modified, ``sources/feed.py``) and its items go to every subscriber.
- **Members** are scheduled by activity from their pull cursors (``SourceState`` rows with a
  ``member_id``), most stale first: members seen within ``notification_active_days`` (a live login
  session) are due after ``notification_refresh_seconds``, dormant ones after
  ``notification_dormant_refresh_seconds``; everyone is refreshed when they open the inbox. Cursors of
  instances whose circuit breaker is open (or that asked to wait with ``Retry-After``) are skipped.
  Each query walks an index (``ix_notification_source_state_due`` on ``fetched_at``; the live-session
  index of ``login_session``) and stops after a few times ``limit`` rows: no scan or sort of the
  member set, so a batch costs the same with ten thousand members or a million.
- **Everyone** (``portail notifications pull``): ``members_after`` walks the members with pulled
  sources by keyset (``member_id > after``), one indexed query per kind of source, merged here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, ScalarSelect, exists, nulls_first, or_
from sqlmodel import Session, col, select

from portail.accounts.models import LoginSession
from portail.config import Settings
from portail.federation.models import Instance
from portail.notifications.models import NotificationPreference, SourceLink, SourceState
from portail.oidc.models import Consent

OVERSCAN = 4  # rows read per member wanted: a member has several cursors


def _stale(cutoff: dt.datetime) -> ColumnElement[bool]:
    return or_(col(SourceState.fetched_at).is_(None), col(SourceState.fetched_at) < cutoff)


def _open_breakers(now: dt.datetime) -> ScalarSelect[int]:
    return (
        select(SourceState.instance_id)
        .where(
            col(SourceState.member_id).is_(None),
            SourceState.breaker == "open",
            col(SourceState.retry_at) > now,
        )
        .scalar_subquery()
    )


def due_feeds(session: Session, settings: Settings, now: dt.datetime, limit: int) -> list[int]:
    """Instances whose feed is due (stale or never read) and followed by at least one member."""
    cutoff = now - dt.timedelta(seconds=settings.notification_refresh_seconds)
    followed = exists().where(
        col(NotificationPreference.instance_id) == col(Instance.id),
        col(NotificationPreference.enabled) == True,  # noqa: E712
    )
    cursor = (col(SourceState.instance_id) == col(Instance.id)) & col(SourceState.member_id).is_(None)
    rows = session.exec(
        select(Instance.id)
        .outerjoin(SourceState, cursor)
        .where(
            col(Instance.feed_url).is_not(None),
            Instance.status == "active",
            followed,
            _stale(cutoff),
            or_(
                col(SourceState.breaker) != "open",
                col(SourceState.retry_at).is_(None),
                col(SourceState.retry_at) <= now,
            ),
        )
        .order_by(nulls_first(col(SourceState.fetched_at)))
        .limit(limit)
    ).all()
    return [int(i) for i in rows if i is not None]


def due_members(session: Session, settings: Settings, now: dt.datetime, limit: int) -> list[int]:
    """The ``limit`` members most overdue: active ones first (refresh interval), then dormant ones."""
    active_cutoff = now - dt.timedelta(seconds=settings.notification_refresh_seconds)
    dormant_cutoff = now - dt.timedelta(seconds=settings.notification_dormant_refresh_seconds)
    seen_since = now - dt.timedelta(days=settings.notification_active_days)
    blocked = _open_breakers(now)

    def stale(cutoff: dt.datetime, *, active_only: bool) -> list[int | None]:
        """Never-read cursors, then the oldest read before ``cutoff``: two walks of the index."""
        found: list[int | None] = []
        for condition, order in (
            (col(SourceState.fetched_at).is_(None), col(SourceState.id)),
            (col(SourceState.fetched_at) < cutoff, col(SourceState.fetched_at)),
        ):
            query = select(SourceState.member_id)
            if active_only:
                query = query.join(LoginSession, col(LoginSession.member_id) == col(SourceState.member_id)).where(
                    col(LoginSession.ended_at).is_(None), col(LoginSession.last_seen_at) > seen_since
                )
            query = query.where(
                col(SourceState.member_id).is_not(None), condition, col(SourceState.instance_id).not_in(blocked)
            )
            found += session.exec(query.order_by(order).limit(limit * OVERSCAN - len(found))).all()
            if len(found) >= limit * OVERSCAN:
                break
        return found

    active = stale(active_cutoff, active_only=True)
    dormant = stale(dormant_cutoff, active_only=False)
    chosen: dict[int, None] = {}
    for member_id in [*active, *dormant]:
        if member_id is not None:
            chosen.setdefault(int(member_id))
        if len(chosen) >= limit:
            break
    return list(chosen)


def members_after(session: Session, limit: int, after: int = 0) -> list[int]:
    """Members with pulled sources (linked accounts, followed feeds, Nextcloud logins), by id, the
    ``limit`` first after ``after``: keyset queries on ``member_id`` indexes (links, each feed's
    followers, Nextcloud consents), merged."""
    linked = select(SourceLink.member_id).where(col(SourceLink.member_id) > after)
    feeds = session.exec(select(Instance.id).where(col(Instance.feed_url).is_not(None)).limit(1000)).all()
    followed = [  # one walk of the (instance_id, member_id) index per feed: few feeds, many members
        select(NotificationPreference.member_id).where(
            NotificationPreference.instance_id == feed,
            col(NotificationPreference.member_id) > after,
            NotificationPreference.enabled == True,  # noqa: E712
        )
        for feed in feeds
    ]
    clouds = (
        select(Consent.member_id)
        .join(Instance, col(Instance.client_id) == col(Consent.client_id))
        .where(col(Consent.member_id) > after, Instance.software == "nextcloud", col(Consent.withdrawn_at).is_(None))
    )
    found: set[int] = set()
    bound: int | None = None  # beyond the last id of a query that was cut off, the merge may miss members
    for query, column in (
        (linked, SourceLink.member_id),
        *((query, NotificationPreference.member_id) for query in followed),
        (clouds, Consent.member_id),
    ):
        rows = [int(m) for m in session.exec(query.distinct().order_by(col(column)).limit(limit)).all()]
        found.update(rows)
        if len(rows) == limit:
            bound = rows[-1] if bound is None else min(bound, rows[-1])
    return sorted(m for m in found if bound is None or m <= bound)[:limit]
