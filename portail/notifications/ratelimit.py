"""Per-instance rate limit of the push API: notifications per minute, shared by every process.

With ``redis_url`` the counter is a Redis key per instance and minute (``INCRBY`` + ``EXPIRE``);
otherwise a ``PushCounter`` row upserted in the database (``INSERT … ON CONFLICT DO UPDATE … RETURNING``,
atomic on PostgreSQL and SQLite). The whole request is counted before it is processed; when the
minute's allowance is exceeded the request is refused with the seconds until the next minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete

from portail.config import Settings
from portail.db import Database
from portail.notifications.models import PushCounter


def _bump(session: Session, instance_id: int, window: int, count: int) -> int:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    upsert = (
        insert(PushCounter)
        .values(instance_id=instance_id, window=window, count=count)
        .on_conflict_do_update(index_elements=["instance_id", "window"], set_={"count": col(PushCounter.count) + count})
        .returning(col(PushCounter.count))
    )
    total = int(session.execute(upsert).scalar_one())
    if total == count:  # first request of this minute: forget old windows
        session.execute(
            delete(PushCounter).where(col(PushCounter.instance_id) == instance_id, col(PushCounter.window) < window - 1)
        )
    return total


class PushLimiter:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._redis: Any = None
        self.clock: Callable[[], float] = time.time  # tests pin it, so a minute boundary cannot split them

    async def consume(self, instance_id: int, count: int) -> int:
        """Count ``count`` notifications; 0 when allowed, else seconds to wait (``Retry-After``)."""
        now = self.clock()
        window = int(now // 60)
        if self.settings.redis_url:
            if self._redis is None:
                import redis.asyncio as aioredis

                self._redis = aioredis.from_url(self.settings.redis_url)
            key = f"portail:push:{instance_id}:{window}"
            pipe = self._redis.pipeline()
            pipe.incrby(key, count)
            pipe.expire(key, 120)
            total = int((await pipe.execute())[0])
        else:
            total = await self.db.run(_bump, instance_id, window, count)
        if total <= self.settings.notification_push_per_minute:
            return 0
        return max(1, int((window + 1) * 60 - now) + 1)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
