"""The aggregator against real local HTTP servers: budgets, unreachable marking, breakers,
conditional requests, byte caps."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import select

from portail import db as database
from portail.config import Settings
from portail.notifications import inbox
from portail.notifications.aggregator import Aggregator
from portail.notifications.models import Notification, SourceState
from tests.fakes.instances import Instances
from tests.unit.notifications.conftest import add_instance, add_member


def _subscribe(db: database.Database, member_id: int, instances: Instances, *names: str) -> dict[str, int]:
    ids = {}
    for name in names:
        instance = add_instance(
            db, name, "praxis", f"{instances.base_url}/i/{name}", feed_url=f"{instances.base_url}/i/{name}/feed"
        )
        assert instance.id is not None
        with db.session() as session:
            inbox.set_preference(session, member_id, instance.id, enabled=True, digest="none")
        ids[name] = instance.id
    return ids


def _titles(db: database.Database, member_id: int) -> set[str]:
    with db.session() as session:
        return {n.title for n, _ in inbox.list_for(session, member_id, inbox.Filters(limit=200))}


def _breaker(db: database.Database, instance_id: int) -> SourceState:
    with db.session() as session:
        row = session.exec(
            select(SourceState).where(SourceState.instance_id == instance_id, SourceState.member_id == None)  # noqa: E711
        ).one()
        return row


def test_the_inbox_answers_within_its_budget_with_the_healthy_instances_and_names_the_others(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    assert member.id is not None
    instances.modes.update({"hanging": "hang", "failing": "fail", "garbled": "garbage"})
    instances.latency.update({"slowish": 0.1})
    _subscribe(fast_db, member.id, instances, "healthy", "slowish", "hanging", "failing", "garbled")

    async def scenario() -> tuple[list[str], set[str]]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            report = await aggregator.refresh_member(member.id or 0, budget=3.0)
            titles = _titles(fast_db, member.id or 0)
            return report.unreachable, titles
        finally:
            await aggregator.aclose()

    unreachable, titles = asyncio.run(scenario())
    assert unreachable == ["Failing", "Garbled", "Hanging"]
    assert {"Note 0 de healthy", "Note 1 de healthy", "Note 0 de slowish"} <= titles
    assert not any("hanging" in t or "failing" in t or "garbled" in t for t in titles)


def test_feed_entries_are_plain_text_and_delivered_once(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    _subscribe(fast_db, member.id or 0, instances, "plainfeed")

    async def scenario() -> int:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            first = await aggregator.refresh_member(member.id or 0, force=True)
            instances.entries["plainfeed"] = 3  # the ETag changes: one new entry
            second = await aggregator.refresh_member(member.id or 0, force=True)
            return first.delivered * 10 + second.delivered
        finally:
            await aggregator.aclose()

    assert asyncio.run(scenario()) == 21
    with fast_db.session() as session:
        bodies = {n.body for n in session.exec(select(Notification)).all()}
    assert bodies == {"Résumé 0", "Résumé 1", "Résumé 2"}


def test_an_unchanged_feed_is_asked_conditionally_and_brings_nothing(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    ids = _subscribe(fast_db, member.id or 0, instances, "etagged")

    async def scenario() -> list[int]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            first = await aggregator.refresh_member(member.id or 0, force=True)
            second = await aggregator.refresh_member(member.id or 0, force=True)
            return [first.delivered, second.delivered]
        finally:
            await aggregator.aclose()

    assert asyncio.run(scenario()) == [2, 0]
    assert _breaker(fast_db, ids["etagged"]).etag == '"etagged-2"'
    assert instances.hits["etagged"] == 2


def test_a_fresh_inbox_is_not_pulled_again_before_the_refresh_interval(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    _subscribe(fast_db, member.id or 0, instances, "fresh")

    async def scenario() -> list[int]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            return [(await aggregator.refresh_member(member.id or 0)).pulled for _ in range(2)]
        finally:
            await aggregator.aclose()

    assert asyncio.run(scenario()) == [1, 0]


def test_the_breaker_opens_after_repeated_failures_then_half_opens_and_closes(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    ids = _subscribe(fast_db, member.id or 0, instances, "flaky")
    instances.modes["flaky"] = "fail"

    async def refresh() -> list[str]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            # No budget: these tests are about the breaker, and a loaded machine must not turn a quick
            # 500 into "did not answer in time" (whose outcome would be stored after the check).
            return (await aggregator.refresh_member(member.id or 0, force=True, budget=None)).unreachable
        finally:
            await aggregator.aclose()

    assert asyncio.run(refresh()) == ["Flaky"]
    assert _breaker(fast_db, ids["flaky"]).breaker == "closed"
    assert asyncio.run(refresh()) == ["Flaky"]
    assert _breaker(fast_db, ids["flaky"]).breaker == "open"
    hits = instances.hits["flaky"]

    # Open: the instance is reported unreachable without being asked.
    assert asyncio.run(refresh()) == ["Flaky"]
    assert instances.hits["flaky"] == hits

    # Once the wait has passed, one trial goes through; the instance has recovered: closed again.
    instances.modes["flaky"] = "ok"
    with fast_db.session() as session:
        row = session.get(SourceState, _breaker(fast_db, ids["flaky"]).id)
        assert row is not None
        row.retry_at = database.utcnow() - dt.timedelta(seconds=1)
        session.add(row)
    assert asyncio.run(refresh()) == []
    assert instances.hits["flaky"] == hits + 1
    state = _breaker(fast_db, ids["flaky"])
    assert (state.breaker, state.failures) == ("closed", 0)


def test_a_failed_trial_reopens_the_breaker_for_longer(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    ids = _subscribe(fast_db, member.id or 0, instances, "down")
    instances.modes["down"] = "fail"

    async def refresh() -> None:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            await aggregator.refresh_member(member.id or 0, force=True, budget=None)
        finally:
            await aggregator.aclose()

    for _ in range(2):
        asyncio.run(refresh())
    first_wait = _breaker(fast_db, ids["down"]).retry_at
    with fast_db.session() as session:
        row = session.get(SourceState, _breaker(fast_db, ids["down"]).id)
        assert row is not None
        row.retry_at = database.utcnow() - dt.timedelta(seconds=1)
        session.add(row)
    asyncio.run(refresh())
    state = _breaker(fast_db, ids["down"])
    assert state.breaker == "open"
    assert first_wait is not None and state.retry_at is not None
    assert state.retry_at - database.utcnow() > dt.timedelta(seconds=fast_settings.notification_breaker_reset_seconds)


def test_an_answer_larger_than_the_byte_cap_is_abandoned(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    ids = _subscribe(fast_db, member.id or 0, instances, "bloated")
    instances.modes["bloated"] = "huge"

    async def scenario() -> list[str]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            return (await aggregator.refresh_member(member.id or 0, budget=None)).unreachable
        finally:
            await aggregator.aclose()

    assert asyncio.run(scenario()) == ["Bloated"]
    assert "larger than" in _breaker(fast_db, ids["bloated"]).last_error


def test_pulls_that_outlive_the_budget_store_their_results_later(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db)
    _subscribe(fast_db, member.id or 0, instances, "late")
    instances.latency["late"] = 0.5

    async def scenario() -> tuple[list[str], set[str]]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            report = await aggregator.refresh_member(member.id or 0, budget=0.05)
            await aggregator.drain()
            return report.unreachable, _titles(fast_db, member.id or 0)
        finally:
            await aggregator.aclose()

    unreachable, titles = asyncio.run(scenario())
    assert unreachable == ["Late"]
    assert "Note 0 de late" in titles
