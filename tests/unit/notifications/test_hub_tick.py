"""The notifications task (run by the background runner on the leader) works through due batches
(``schedule.py``) until a batch comes back short, then sends digests and purges."""

from __future__ import annotations

import asyncio

from portail import db as database
from portail.config import Settings
from portail.notifications.hub import Hub


def test_a_tick_refreshes_batch_after_batch_until_one_is_short(db: database.Database, unit_settings: Settings) -> None:
    hub = Hub(db, unit_settings)
    sizes = [200, 200, 17, 200]
    asked: list[int] = []

    async def refresh_due(limit: int = 200) -> int:
        asked.append(limit)
        return sizes[len(asked) - 1]

    hub.aggregator.refresh_due = refresh_due  # type: ignore[method-assign]

    async def scenario() -> None:
        try:
            await hub.tick()
        finally:
            await hub.aclose()

    asyncio.run(scenario())
    assert asked == [200, 200, 200]  # stopped after the short batch
