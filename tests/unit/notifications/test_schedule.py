"""The pull schedule (``schedule.py``) and the aggregator's manners: feeds once per feed, members by
activity (active often, dormant rarely), every member by keyset, ``Retry-After`` honoured, a bound on
pulls per second per instance."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

from sqlmodel import select

from portail import db as database
from portail.accounts.models import LoginSession
from portail.config import Settings
from portail.db import utcnow
from portail.notifications import inbox, schedule
from portail.notifications.aggregator import Aggregator
from portail.notifications.models import SourceLink, SourceState
from tests.fakes.instances import Instances
from tests.unit.notifications.conftest import add_instance, add_member


def _feed(db: database.Database, instances: Instances, name: str, *member_ids: int) -> int:
    instance = add_instance(
        db, name, "praxis", f"{instances.base_url}/i/{name}", feed_url=f"{instances.base_url}/i/{name}/feed"
    )
    with db.session() as session:
        for member_id in member_ids:
            inbox.set_preference(session, member_id, instance.id or 0, enabled=True, digest="none")
    return instance.id or 0


def _cursor(db: database.Database, instance_id: int, member_id: int, age: dt.timedelta) -> None:
    with db.session() as session:
        session.add(SourceState(instance_id=instance_id, member_id=member_id, fetched_at=utcnow() - age))


def _seen(db: database.Database, member_id: int) -> None:
    with db.session() as session:
        token = secrets.token_hex(16)
        session.add(LoginSession(token_hash=token, sid=token, member_id=member_id))


def test_a_feed_is_pulled_once_for_all_its_subscribers(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    members = [add_member(fast_db, f"f{n}@example.org").id or 0 for n in range(3)]
    _feed(fast_db, instances, "partage", *members)
    _feed(fast_db, instances, "delaisse")  # nobody follows it

    async def scenario() -> None:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            await aggregator.refresh_due()
            await aggregator.refresh_due()  # fresh now: not asked again
        finally:
            await aggregator.aclose()

    asyncio.run(scenario())
    assert instances.hits.get("partage") == 1 and "delaisse" not in instances.hits
    for member_id in members:
        with fast_db.session() as session:
            titles = {n.title for n, _ in inbox.list_for(session, member_id, inbox.Filters(limit=10))}
        assert titles == {"Note 0 de partage", "Note 1 de partage"}


def test_active_members_are_due_after_the_refresh_interval_and_dormant_ones_after_a_day(
    fast_db: database.Database, fast_settings: Settings
) -> None:
    tool = add_instance(fast_db, "matrix", "matrix", "https://matrix.example").id or 0
    active, dormant, sleeper, fresh = (add_member(fast_db, f"a{n}@example.org").id or 0 for n in range(4))
    _seen(fast_db, active)
    _cursor(fast_db, tool, active, dt.timedelta(minutes=5))
    _cursor(fast_db, tool, dormant, dt.timedelta(hours=2))  # dormant, but not for a day yet
    _cursor(fast_db, tool, sleeper, dt.timedelta(days=2))
    _cursor(fast_db, tool, fresh, dt.timedelta(seconds=5))
    with fast_db.session() as session:
        due = schedule.due_members(session, fast_settings, utcnow(), 10)
    assert due == [active, sleeper]  # active first


def test_members_of_an_instance_behind_an_open_breaker_are_not_chosen(
    fast_db: database.Database, fast_settings: Settings
) -> None:
    tool = add_instance(fast_db, "nuage", "nextcloud", "https://nuage.example").id or 0
    member = add_member(fast_db).id or 0
    _cursor(fast_db, tool, member, dt.timedelta(days=3))
    with fast_db.session() as session:
        session.add(SourceState(instance_id=tool, breaker="open", retry_at=utcnow() + dt.timedelta(minutes=5)))
    with fast_db.session() as session:
        assert schedule.due_members(session, fast_settings, utcnow(), 10) == []


def test_every_member_with_sources_is_walked_by_keyset_once(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    tool = add_instance(fast_db, "matrix", "matrix", "https://matrix.example").id or 0
    members = [add_member(fast_db, f"k{n}@example.org").id or 0 for n in range(5)]
    with fast_db.session() as session:
        for member_id in members[:3]:
            session.add(SourceLink(member_id=member_id, instance_id=tool, kind="matrix", secret_sealed="x"))
    _feed(fast_db, instances, "suivi", members[1], members[3])
    add_member(fast_db, "sans-source@example.org")
    walked: list[int] = []
    after = 0
    with fast_db.session() as session:
        while page := schedule.members_after(session, 2, after):
            walked += page
            after = page[-1]
    assert walked == members[:4]


def test_an_instance_that_answers_retry_after_is_left_alone_that_long(
    fast_db: database.Database, fast_settings: Settings, instances: Instances
) -> None:
    member = add_member(fast_db).id or 0
    busy = _feed(fast_db, instances, "occupe", member)
    instances.modes["occupe"] = "busy"

    async def scenario() -> tuple[int, int]:
        aggregator = Aggregator(fast_db, fast_settings)
        try:
            first = (await aggregator.refresh_member(member, force=True)).pulled
            second = (await aggregator.refresh_member(member, force=True)).pulled
            return first, second
        finally:
            await aggregator.aclose()

    assert asyncio.run(scenario()) == (1, 0)
    with fast_db.session() as session:
        guard = session.exec(
            select(SourceState).where(SourceState.instance_id == busy, SourceState.member_id == None)  # noqa: E711
        ).one()
    assert guard.breaker == "open" and guard.retry_at is not None
    assert guard.retry_at > utcnow() + dt.timedelta(seconds=100)  # the 120 s it asked for
    assert instances.hits["occupe"] == 1


def test_pulls_to_one_instance_are_spaced_by_the_per_second_bound(
    fast_db: database.Database, fast_settings: Settings
) -> None:
    aggregator = Aggregator(fast_db, fast_settings.replace(notification_pull_per_second=2.0))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    aggregator.clock = lambda: 100.0
    aggregator.sleep = sleep

    async def scenario() -> None:
        for instance_id in (1, 1, 1, 2):
            await aggregator._pace(instance_id)

    asyncio.run(scenario())
    assert waits == [0.5, 1.0]  # the second and third pull to instance 1; instance 2 is not held back
