"""Live fan-out across processes: a wake-up published by one broker reaches the streams held by
another (two brokers = two worker processes), over PostgreSQL LISTEN/NOTIFY and in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from portail.notifications.live import Broker
from tests.conftest import make_settings


async def _roundtrip(publisher: Broker, listener: Broker) -> list[int]:
    async with listener.subscribe(7) as queue, listener.subscribe(8) as other:
        await publisher.publish([(7, 41), (7, 42), (9, 1)])
        got = [await asyncio.wait_for(queue.get(), 5)]
        assert other.empty()
        return got


@pytest.mark.postgres
def test_postgresql_notify_reaches_the_streams_of_another_process(tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(tmp_path, postgres_url)

    async def scenario() -> list[int]:
        a, b = Broker(settings), Broker(settings)
        try:
            assert a.backend == b.backend == "postgresql"
            return await _roundtrip(a, b)
        finally:
            await a.aclose()
            await b.aclose()

    assert asyncio.run(scenario()) == [42]


def test_on_sqlite_the_broker_delivers_in_process(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url)

    async def scenario() -> list[int]:
        broker = Broker(settings)
        try:
            assert broker.backend == "memory"
            async with broker.subscribe(7) as queue:
                await broker.publish([(7, 41), (8, 5)])
                return [await asyncio.wait_for(queue.get(), 5)]
        finally:
            await broker.aclose()

    assert asyncio.run(scenario()) == [41]
