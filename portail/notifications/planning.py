"""What to pull for a member, and recording what a pull brought (the aggregator's database half).

``plan`` lists a member's sources: their linked Matrix and Discourse accounts (``SourceLink``), the
Nextcloud instances they use through Portail (an active consent for the instance's client: Portail
then mints them a short-lived access token), and the feeds they subscribed to (an enabled
preference on an instance with a ``feed_url``). A Matrix account whose homeserver accepted Portail's
pusher and has pushed at least once (``gateway.py``) is not pulled: its notifications are pushed;
nor is a Discourse account whose forum's webhook works and names it (``webhooks.py``).
Sources the member turned off, sources pulled less than ``notification_refresh_seconds`` ago and
instances whose circuit breaker is open are left out (the last ones reported as unreachable).
``record`` stores one pull's outcome: new notifications (idempotently), the cursor (ETag,
since-token), and the instance's breaker.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import Session, col, select

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.federation.models import Instance
from portail.notifications import breaker, inbox
from portail.notifications.models import MatrixPusher, NotificationPreference, SourceLink, SourceState, WebhookEvent
from portail.notifications.sealing import Unsealable, unseal
from portail.notifications.sources import Item, PullJob, PullResult
from portail.oidc.models import Consent, OAuthClient

log = logging.getLogger("portail.notifications")

TokenMinter = Callable[[Session, Settings, Member, OAuthClient], str]
"""Mints a short-lived JWT access token for ``member`` whose audience is the client's id (Nextcloud)."""


@dataclass(frozen=True)
class Planned:
    source: str  # matrix | nextcloud | discourse | feed
    job: PullJob


@dataclass
class Plan:
    jobs: list[Planned] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # names of instances whose breaker is open


def state_for(session: Session, instance_id: int, member_id: int | None) -> SourceState:
    query = select(SourceState).where(SourceState.instance_id == instance_id)
    query = query.where(
        col(SourceState.member_id).is_(None) if member_id is None else SourceState.member_id == member_id
    )
    row = session.exec(query.order_by(col(SourceState.id))).first()
    if row is None:
        row = SourceState(instance_id=instance_id, member_id=member_id)
        session.add(row)
        session.flush()
    return row


def preload_states(
    session: Session, instance_ids: list[int], member_id: int
) -> dict[tuple[int, int | None], SourceState]:
    """Every cursor and breaker row a plan needs, in one query (missing ones created)."""
    rows = session.exec(
        select(SourceState)
        .where(
            col(SourceState.instance_id).in_(instance_ids),
            (col(SourceState.member_id) == member_id) | col(SourceState.member_id).is_(None),
        )
        .order_by(col(SourceState.id).desc())
    ).all()
    states = {(row.instance_id, row.member_id): row for row in rows}
    missing = [
        SourceState(instance_id=instance_id, member_id=owner)
        for instance_id in set(instance_ids)
        for owner in (member_id, None)
        if (instance_id, owner) not in states
    ]
    if missing:
        session.add_all(missing)
        session.flush()
        states.update({(row.instance_id, row.member_id): row for row in missing})
    return states


@dataclass(frozen=True)
class Freshness:
    """When a tool of the member's was last read (None: never), or that it pushes (``pushed``)."""

    instance_id: int
    name: str
    fetched_at: dt.datetime | None
    status: str
    pushed: bool = False


def freshness(session: Session, member_id: int) -> list[Freshness]:
    """Per pulled tool of this member, the time of its last pull (the inbox's "mis à jour il y a N
    min"); tools that push to Portail (a Matrix pusher that has pushed, a live Discourse webhook) are
    marked ``pushed``. A handful of indexed queries, each bounded to 100 rows."""
    rows: list[tuple[Instance, SourceState | None]] = list(
        session.exec(
            select(Instance, SourceState)
            .join(SourceState, col(SourceState.instance_id) == col(Instance.id))
            .where(SourceState.member_id == member_id, Instance.status == "active")
            .limit(100)
        ).all()
    )
    rows += session.exec(  # followed feeds, read or not yet
        select(Instance, SourceState)
        .join(NotificationPreference, col(NotificationPreference.instance_id) == col(Instance.id))
        .outerjoin(
            SourceState,
            (col(SourceState.instance_id) == col(Instance.id)) & col(SourceState.member_id).is_(None),
        )
        .where(
            NotificationPreference.member_id == member_id,
            NotificationPreference.enabled == True,  # noqa: E712
            col(Instance.feed_url).is_not(None),
            Instance.status == "active",
        )
        .limit(100)
    ).all()
    rows += session.exec(  # linked accounts, read or not yet
        select(Instance, SourceState)
        .join(SourceLink, col(SourceLink.instance_id) == col(Instance.id))
        .outerjoin(
            SourceState,
            (col(SourceState.instance_id) == col(Instance.id)) & (col(SourceState.member_id) == member_id),
        )
        .where(SourceLink.member_id == member_id, Instance.status == "active")
        .limit(100)
    ).all()
    pushed = set(
        session.exec(
            select(MatrixPusher.instance_id).where(
                MatrixPusher.member_id == member_id,
                MatrixPusher.status == "active",
                col(MatrixPusher.last_push_at).is_not(None),
            )
        ).all()
    )
    hooked = session.exec(
        select(SourceLink.instance_id).where(
            SourceLink.member_id == member_id, SourceLink.kind == "discourse", col(SourceLink.remote_id).is_not(None)
        )
    ).all()
    pushed |= _webhook_instances(session, list(hooked))
    seen: dict[int, Freshness] = {}
    for instance, state in rows:
        assert instance.id is not None
        fetched_at, status = (state.fetched_at, state.status) if state is not None else (None, "unknown")
        known = seen.get(instance.id)
        # A tool read both through its feed and per member shows the older of the two times: the inbox
        # is current only as of then (and the answer does not depend on which row the query gave first).
        if known is None or known.fetched_at is None or (fetched_at is not None and fetched_at < known.fetched_at):
            seen[instance.id] = Freshness(instance.id, instance.name, fetched_at, status, instance.id in pushed)
    return sorted(seen.values(), key=lambda f: f.name.lower())


def _webhook_instances(session: Session, instance_ids: list[int]) -> set[int]:
    """Those instances whose webhook has delivered (an event remembered by ``webhooks.py``)."""
    found: set[int] = set()
    for instance_id in set(instance_ids):
        if session.exec(select(WebhookEvent.id).where(WebhookEvent.instance_id == instance_id).limit(1)).first():
            found.add(instance_id)
    return found


def candidates(
    session: Session, settings: Settings, member: Member, minter: TokenMinter | None
) -> list[tuple[str, Instance, str | None, str, bool]]:
    """(source, instance, credential, account, per-member) for every source of this member."""
    assert member.id is not None
    found: list[tuple[str, Instance, str | None, str, bool]] = []
    links = session.exec(
        select(SourceLink, Instance)
        .join(Instance, col(Instance.id) == col(SourceLink.instance_id))
        .where(SourceLink.member_id == member.id, Instance.status == "active")
    ).all()
    pushed = set(
        session.exec(
            select(MatrixPusher.instance_id).where(
                MatrixPusher.member_id == member.id,
                MatrixPusher.status == "active",
                col(MatrixPusher.last_push_at).is_not(None),
            )
        ).all()
    )
    hooked = _webhook_instances(session, [i.id or 0 for link, i in links if link.kind == "discourse"])
    for link, instance in links:
        if link.kind == "matrix" and instance.id in pushed:
            continue  # the homeserver pushes to Portail's gateway (gateway.py): nothing to pull
        if link.kind == "discourse" and link.remote_id and instance.id in hooked:
            continue  # the forum's webhook names this member (webhooks.py): nothing to pull
        try:
            found.append((link.kind, instance, unseal(settings.secret_key, link.secret_sealed), link.account, True))
        except Unsealable:
            found.append((link.kind, instance, None, link.account, True))
    if minter is not None:
        clouds = session.exec(
            select(Instance, OAuthClient)
            .join(OAuthClient, col(OAuthClient.client_id) == col(Instance.client_id))
            .join(Consent, col(Consent.client_id) == col(Instance.client_id))
            .where(
                Instance.software == "nextcloud",
                Instance.status == "active",
                Consent.member_id == member.id,
                col(Consent.withdrawn_at).is_(None),
                col(OAuthClient.disabled_at).is_(None),
            )
        ).all()
        for instance, client in clouds:
            found.append(("nextcloud", instance, minter(session, settings, member, client), "", True))
    feeds = session.exec(
        select(Instance)
        .join(NotificationPreference, col(NotificationPreference.instance_id) == col(Instance.id))
        .where(
            NotificationPreference.member_id == member.id,
            NotificationPreference.enabled == True,  # noqa: E712
            col(Instance.feed_url).is_not(None),
            Instance.status == "active",
        )
    ).all()
    found.extend(("feed", instance, None, "", False) for instance in feeds)
    return found


def plan(
    session: Session, settings: Settings, member_id: int, *, force: bool = False, minter: TokenMinter | None = None
) -> Plan:
    member = session.get(Member, member_id)
    result = Plan()
    if member is None or not member.active:
        return result
    now = utcnow()
    fresh_after = now - dt.timedelta(seconds=settings.notification_refresh_seconds)
    prefs = inbox.preferences(session, member_id)
    found = candidates(session, settings, member, minter)
    states = preload_states(session, [c[1].id or 0 for c in found], member_id)
    for source, instance, credential, account, per_member in found:
        assert instance.id is not None
        pref = prefs.get(instance.id)
        if pref is not None and not pref.enabled:
            continue
        cursor = states[(instance.id, member_id if per_member else None)]
        if not force and cursor.fetched_at is not None and cursor.fetched_at > fresh_after:
            continue
        guard = states[(instance.id, None)]
        if not breaker.claim_trial(guard, now, settings):
            result.skipped.append(instance.name)
            if per_member:
                cursor.status = "unreachable"
                cursor.last_error = "circuit breaker open"
            continue
        job = PullJob(
            instance_id=instance.id,
            instance_name=instance.name,
            software=instance.software,
            base_url=instance.base_url.rstrip("/"),
            member_id=member_id if per_member else None,
            url=instance.feed_url if source == "feed" else None,
            credential=credential,
            account=account,
            etag=cursor.etag,
            since=cursor.since,
        )
        result.jobs.append(Planned(source, job))
    # Cursors of this member's that are due but have nothing to pull (the tool pushes, was turned off
    # or left) are stamped, so that the schedule (schedule.py) does not keep choosing this member.
    kept = {planned.job.instance_id for planned in result.jobs} | {
        iid for (iid, owner), st in states.items() if owner == member_id and st.status == "unreachable"
    }
    session.execute(
        update(SourceState)
        .where(
            col(SourceState.member_id) == member_id,
            col(SourceState.instance_id).not_in(kept),
            or_(col(SourceState.fetched_at).is_(None), col(SourceState.fetched_at) <= fresh_after),
        )
        .values(fetched_at=now)
    )
    return result


def feed_jobs(session: Session, settings: Settings, instance_ids: list[int]) -> list[Planned]:
    """One pull per feed (not per subscriber), conditional on its stored ETag / Last-Modified."""
    now = utcnow()
    jobs: list[Planned] = []
    for instance in session.exec(select(Instance).where(col(Instance.id).in_(instance_ids))).all():
        if instance.id is None or not instance.feed_url:
            continue
        cursor = state_for(session, instance.id, None)
        if not breaker.claim_trial(cursor, now, settings):
            continue
        jobs.append(
            Planned(
                "feed",
                PullJob(
                    instance_id=instance.id,
                    instance_name=instance.name,
                    software=instance.software,
                    base_url=instance.base_url.rstrip("/"),
                    url=instance.feed_url,
                    etag=cursor.etag,
                    since=cursor.since,
                ),
            )
        )
    return jobs


def defer(session: Session, waits: dict[int, int]) -> None:
    """Honour ``Retry-After``: each instance's breaker stays open that many seconds."""
    now = utcnow()
    for instance_id, seconds in waits.items():
        guard = state_for(session, instance_id, None)
        breaker.defer(guard, now, seconds)
        session.add(guard)


def _safe_link(link: str | None, fallback: str) -> str:
    if link and link.startswith(("https://", "http://")) and len(link) <= 1000:
        return link
    return fallback


def record_many(
    session: Session, settings: Settings, outcomes: list[tuple[Planned, PullResult | None, tuple[str, str] | None, int]]
) -> list[inbox.Delivered]:
    """``record`` for several pulls in one transaction (what a refresh does when its pulls are back).

    The cursor and breaker rows of every pull are read in one query rather than one per pull."""
    instance_ids = sorted({planned.job.instance_id for planned, *_ in outcomes})
    member_ids = sorted({planned.job.member_id for planned, *_ in outcomes if planned.job.member_id is not None})
    states: dict[tuple[int, int | None], SourceState] = {}
    if instance_ids:
        # Only the rows these pulls touch: the instances' breaker rows and these members' cursors
        # (reading every cursor of the instances would cost as much as their member count).
        owners: ColumnElement[bool] = col(SourceState.member_id).is_(None)
        if member_ids:
            owners = owners | col(SourceState.member_id).in_(member_ids)
        for row in session.exec(
            select(SourceState)
            .where(col(SourceState.instance_id).in_(instance_ids), owners)
            .order_by(col(SourceState.id).desc())
        ):
            states[(row.instance_id, row.member_id)] = row  # the oldest row wins, as in state_for
    delivered: list[inbox.Delivered] = []
    for planned, result, failure, latency_ms in outcomes:
        delivered.extend(record(session, settings, planned, result, failure, latency_ms, states=states))
    return delivered


def record(
    session: Session,
    settings: Settings,
    planned: Planned,
    result: PullResult | None,
    failure: tuple[str, str] | None,
    latency_ms: int,
    *,
    states: dict[tuple[int, int | None], SourceState] | None = None,
) -> list[inbox.Delivered]:
    """Store one pull: notifications, cursor, breaker. ``failure`` is (status, message) or None.

    ``states`` holds cursor and breaker rows already read (``record_many``); missing ones are read
    or created here."""
    job = planned.job
    now = utcnow()
    known = states if states is not None else {}
    cursor = known.get((job.instance_id, job.member_id)) or state_for(session, job.instance_id, job.member_id)
    guard = (
        cursor
        if job.member_id is None
        else known.get((job.instance_id, None)) or state_for(session, job.instance_id, None)
    )
    known[(job.instance_id, job.member_id)] = cursor
    known[(job.instance_id, None)] = guard
    cursor.fetched_at = now
    delivered: list[inbox.Delivered] = []
    if failure is not None or result is None:
        status, message = failure or ("error", "no result")
        cursor.status, cursor.last_error = status, message[:500]
        if status != "unauthorized":
            breaker.record_failure(guard, now, settings, status, message)
        elif guard is not cursor and guard.breaker == "half-open":
            breaker.record_success(guard, latency_ms)  # the instance answered
        session.add_all([cursor, guard])
        return delivered
    breaker.record_success(guard, latency_ms)
    if result.account_id and job.member_id is not None:
        session.execute(
            update(SourceLink)
            .where(
                col(SourceLink.member_id) == job.member_id,
                col(SourceLink.instance_id) == job.instance_id,
                or_(col(SourceLink.remote_id).is_(None), col(SourceLink.remote_id) != result.account_id),
            )
            .values(remote_id=result.account_id)
        )
    cursor.status, cursor.last_error = "ok", ""
    cursor.etag, cursor.since = result.etag, result.since
    if not result.items:
        recipients: set[int] = set()
    elif job.member_id is not None:
        recipients = {job.member_id}
    else:
        recipients = set(
            session.exec(
                select(NotificationPreference.member_id).where(
                    NotificationPreference.instance_id == job.instance_id,
                    NotificationPreference.enabled == True,  # noqa: E712
                )
            ).all()
        )
    rows = source_rows(result.items, sorted(recipients), job.instance_id, job.base_url, planned.source, now)
    for start in range(0, len(rows), 500):
        delivered.extend(inbox.deliver(session, rows[start : start + 500]))
    session.add_all([cursor, guard])
    return delivered


def source_rows(
    items: list[Item], member_ids: list[int], instance_id: int, base_url: str, origin: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """Rows for ``inbox.deliver`` of what a source said (pulled, or pushed by a Matrix homeserver):
    ``external_id`` is ``"<member id>:<the source's id>"``, so a pull and a push of one event are one row."""
    return [
        {
            "member_id": member_id,
            "instance_id": instance_id,
            "external_id": f"{member_id}:{item.native_id}"[:255],
            "kind": item.kind[:40] or "info",
            "title": item.title[:300] or "—",
            "body": item.body,
            "link": _safe_link(item.link, base_url),
            "origin": origin,
            "created_at": item.created_at or now,
            "received_at": now,
            "read_at": now if item.read else None,
        }
        for item in items
        for member_id in member_ids
    ]
