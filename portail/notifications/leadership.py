"""One leader among Portail's worker processes for background work.

- Redis (``redis_url``): ``SET portail:notifications:leader <id> NX PX <ttl>``, renewed by the holder
  (compare-and-expire in a Lua script) — another process takes over when the holder stops renewing.
- PostgreSQL: a session-level ``pg_try_advisory_lock`` held on a dedicated connection; it is released
  when that connection closes, so a crashed leader frees it at once.
- SQLite: one process serves, so it leads.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from portail.config import Settings
from portail.db import Database

LOCK_KEY = 0x504F5254_4E4F54  # "PORT" "NOT": a constant advisory-lock key
REDIS_KEY = "portail:notifications:leader"
RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else
return 0 end"""


class Leadership:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.identity = secrets.token_hex(8)
        self._connection: Connection | None = None
        self._redis: Any = None

    @property
    def ttl_ms(self) -> int:
        return max(self.settings.notification_refresh_seconds, 5) * 3000

    async def acquire(self) -> bool:
        """Whether this process leads now (takes or keeps leadership)."""
        if self.settings.redis_url:
            if self._redis is None:
                import redis.asyncio as aioredis

                self._redis = aioredis.from_url(self.settings.redis_url)
            if await self._redis.eval(RENEW, 1, REDIS_KEY, self.identity, self.ttl_ms):
                return True
            return bool(await self._redis.set(REDIS_KEY, self.identity, nx=True, px=self.ttl_ms))
        if self.db.engine.dialect.name != "postgresql":
            return True
        return await asyncio.to_thread(self._pg_acquire)

    def _pg_acquire(self) -> bool:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except Exception:
                self._drop()
        connection = self.db.engine.connect()
        got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar())
        connection.commit()
        if got:
            self._connection = connection
        else:
            connection.close()
        return got

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()  # really close: a pooled connection would keep the lock
            finally:
                self._connection = None

    async def release(self) -> None:
        if self._redis is not None:
            await self._redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
                1,
                REDIS_KEY,
                self.identity,
            )
            await self._redis.aclose()
            self._redis = None
        await asyncio.to_thread(self._drop)
