"""The aggregator: pulls a member's sources concurrently, within a budget, behind circuit breakers.

``refresh_member(member_id, budget=…)`` plans the pulls (``planning.plan``), starts them all at once
under a process-wide bound (``notification_pull_concurrency``), each under its own timeout
(``outbound_timeout_seconds``), and waits at most ``budget`` seconds. Pulls still running then go on in
the background and store their results when they finish (the next look at the inbox shows them);
the report names the tools that did not answer in time, failed, or are behind an open breaker.
Results are stored with conditional-request cursors (ETag, since-tokens) and update the breakers.
Newly delivered notifications are handed to ``on_delivered`` (the live fan-out).
``refresh_soon`` starts a member's refresh without waiting for it: what the inbox page does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from sqlmodel import Session

from portail import metrics
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation.models import Instance
from portail.notifications import planning, schedule
from portail.notifications.fetcher import Fetcher, SourceError
from portail.notifications.inbox import Delivered
from portail.notifications.models import Notification
from portail.notifications.planning import Planned, TokenMinter
from portail.notifications.sources import Dismiss, Pull, PullJob, PullResult, discourse, feed, matrix, nextcloud

log = logging.getLogger("portail.notifications")

PULLS: dict[str, Pull] = {
    "matrix": matrix.pull,
    "nextcloud": nextcloud.pull,
    "discourse": discourse.pull,
    "feed": feed.pull,
}
DISMISSES: dict[str, Dismiss] = {"nextcloud": nextcloud.dismiss, "discourse": discourse.dismiss}

OnDelivered = Callable[[list[Delivered]], Awaitable[None]]


@dataclass
class Report:
    """What one refresh did: pulls started, notifications delivered, tools that did not answer."""

    pulled: int = 0
    delivered: int = 0
    unreachable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Outcome:
    planned: Planned
    result: PullResult | None
    failure: tuple[str, str] | None
    latency_ms: int
    retry_after: int | None = None


class Aggregator:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        minter: TokenMinter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.minter = minter
        self.transport = transport
        self.on_delivered = on_delivered
        self._fetcher: Fetcher | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._background: set[asyncio.Future[None]] = set()
        self.pulls: Counter[str] = Counter()  # pulls started in this process, by source
        self._refreshing: set[int] = set()  # members refreshed in the background right now
        self._next_slot: dict[int, float] = {}  # per instance: when its next pull may start
        self.clock: Callable[[], float] = time.monotonic  # tests pin both
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = Fetcher(
                timeout=self.settings.outbound_timeout_seconds,
                max_bytes=self.settings.outbound_max_bytes,
                transport=self.transport,
            )
        return self._fetcher

    def _bound(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(max(self.settings.notification_pull_concurrency, 1))
        return self._semaphore

    async def _pace(self, instance_id: int) -> None:
        """At most ``notification_pull_per_second`` pulls start per instance (and per process)."""
        rate = self.settings.notification_pull_per_second
        if rate <= 0:
            return
        now = self.clock()
        slot = max(now, self._next_slot.get(instance_id, now))
        self._next_slot[instance_id] = slot + 1.0 / rate
        if slot > now:
            await self.sleep(slot - now)

    async def _fetch(self, planned: Planned) -> _Outcome:
        """Run one pull under the concurrency bound and its own timeout (nothing stored yet)."""
        job = planned.job
        result: PullResult | None = None
        failure: tuple[str, str] | None = None
        retry_after: int | None = None
        self.pulls[planned.source] += 1
        await self._pace(job.instance_id)
        async with self._bound():
            started = time.monotonic()
            try:
                result = await asyncio.wait_for(
                    PULLS[planned.source](self.fetcher, job), self.settings.outbound_timeout_seconds
                )
            except SourceError as exc:
                failure, retry_after = (exc.status, exc.message), exc.retry_after
            except TimeoutError:
                failure = ("unreachable", "timed out")
            except Exception as exc:  # a source bug must not take the inbox down
                log.exception("pull from %s failed", job.base_url)
                failure = ("error", f"{type(exc).__name__}")
        if failure is not None:
            log.info("pull from %s (%s) failed: %s", job.instance_name, planned.source, failure[1])
        elapsed = time.monotonic() - started
        metrics.NOTIFICATION_PULLS.labels(planned.source, failure[0] if failure else "ok").inc()
        metrics.NOTIFICATION_PULL_DURATION.labels(planned.source).observe(elapsed)
        return _Outcome(planned, result, failure, int(elapsed * 1000), retry_after)

    async def _store(self, outcomes: list[_Outcome]) -> int:
        rows = [(o.planned, o.result, o.failure, o.latency_ms) for o in outcomes]
        delivered = await self.db.run(planning.record_many, self.settings, rows)
        waits = {o.planned.job.instance_id: o.retry_after for o in outcomes if o.retry_after}
        if waits:  # the instance said when to come back (Retry-After): its breaker stays open until then
            await self.db.run(planning.defer, waits)
        if delivered and self.on_delivered is not None:
            await self.on_delivered(delivered)
        return len(delivered)

    async def _store_late(self, task: asyncio.Future[_Outcome]) -> None:
        await self._store([await task])

    async def refresh_member(self, member_id: int, *, budget: float | None = None, force: bool = False) -> Report:
        """Pull the member's stale sources; return after at most ``budget`` seconds (None: wait for all)."""
        # The budget covers the whole refresh: planning, waiting and storing. Storing what arrived is
        # given a small reserve at the end so that the page still answers within the budget.
        started = time.monotonic()
        plan = await self.db.run(planning.plan, self.settings, member_id, force=force, minter=self.minter)
        report = Report(pulled=len(plan.jobs), unreachable=list(plan.skipped))
        if not plan.jobs:
            return report
        tasks = [asyncio.ensure_future(self._fetch(planned)) for planned in plan.jobs]
        deadline: float | None = None
        if budget is not None:
            reserve = min(0.25, budget * 0.15)
            deadline = started + budget - reserve
        # Store pulls as they come back, so that the last one's answer only waits for its own
        # (small) write, not for everyone's.
        pending: set[asyncio.Future[_Outcome]] = set(tasks)
        while pending:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break  # the budget is spent
            outcomes = [task.result() for task in done]
            report.delivered += await self._store(outcomes)
            report.unreachable.extend(o.planned.job.instance_name for o in outcomes if o.failure is not None)
        names: dict[asyncio.Future[_Outcome], str] = {
            task: planned.job.instance_name for task, planned in zip(tasks, plan.jobs, strict=True)
        }
        for task in pending:  # finish in the background; stored when they end
            late = asyncio.ensure_future(self._store_late(task))
            self._background.add(late)
            late.add_done_callback(self._background.discard)
            report.unreachable.append(names[task])
        report.unreachable = sorted(set(report.unreachable))
        return report

    def refresh_soon(self, member_id: int) -> bool:
        """Start refreshing the member's stale sources in the background (the cache-first inbox: the
        page renders from stored notifications and new ones reach it over the live stream). At most
        one such refresh per member at a time; False if one is already running."""
        if member_id in self._refreshing:
            return False
        self._refreshing.add(member_id)
        task = asyncio.ensure_future(self._refresh_quietly(member_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    def refreshing(self, member_id: int) -> bool:
        """Is a background refresh of this member running?"""
        return member_id in self._refreshing

    async def _refresh_quietly(self, member_id: int) -> None:
        try:
            await self.refresh_member(member_id)
        except Exception:
            log.exception("background refresh of member %s failed", member_id)
        finally:
            self._refreshing.discard(member_id)

    async def refresh_due(self, limit: int = 200) -> int:
        """Background pass (``schedule.py``): the due feeds, once each, then the ``limit`` most overdue
        members (active ones every ``notification_refresh_seconds``, dormant ones every
        ``notification_dormant_refresh_seconds``), concurrently under the pull bounds. Returns the
        number of members refreshed."""
        now = utcnow()
        feeds = await self.db.run(schedule.due_feeds, self.settings, now, limit)
        if feeds:
            jobs = await self.db.run(planning.feed_jobs, self.settings, feeds)
            outcomes = await asyncio.gather(*(self._fetch(planned) for planned in jobs))
            await self._store(list(outcomes))
        member_ids = await self.db.run(schedule.due_members, self.settings, now, limit)
        await asyncio.gather(*(self.refresh_member(member_id) for member_id in member_ids))
        return len(member_ids)

    async def refresh_all(self, batch: int = 200) -> int:
        """Refresh every member who has pulled sources (``portail notifications pull``), by keyset."""
        done, after = 0, 0
        while True:
            member_ids = await self.db.run(schedule.members_after, batch, after)
            for member_id in member_ids:
                await self.refresh_member(member_id)
            done += len(member_ids)
            if len(member_ids) < batch:
                return done
            after = member_ids[-1]

    async def dismiss_at_source(self, notification: Notification, instance: Instance) -> bool:
        """Propagate a dismissal to the source where its API allows it (Nextcloud, Discourse)."""
        dismiss = DISMISSES.get(notification.origin)
        if dismiss is None or ":" not in notification.external_id:
            return False
        job = await self.db.run(_job_for, self.settings, notification.member_id, instance, self.minter)
        if job is None:
            return False
        try:
            return await dismiss(self.fetcher, job, notification.external_id.split(":", 1)[1])
        except SourceError as exc:
            log.info("dismiss at %s failed: %s", instance.name, exc.message)
            return False

    async def drain(self) -> None:
        """Wait for pulls that outlived their budget (tests, shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background))

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._fetcher is not None:
            await self._fetcher.aclose()
            self._fetcher = None


def _job_for(
    session: Session, settings: Settings, member_id: int, instance: Instance, minter: TokenMinter | None
) -> PullJob | None:
    for source, candidate, credential, account, _per_member in planning.candidates(
        session, settings, _member(session, member_id), minter
    ):
        if candidate.id == instance.id and source in DISMISSES and credential:
            return PullJob(
                instance_id=candidate.id or 0,
                instance_name=candidate.name,
                software=candidate.software,
                base_url=candidate.base_url.rstrip("/"),
                member_id=member_id,
                credential=credential,
                account=account,
            )
    return None


def _member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    assert member is not None
    return member
