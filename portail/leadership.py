"""One leader among Portail's processes and nodes, for the background runner (``background.py``).

Exactly one process runs the periodic background tasks at a time; the others wait and take over
when it stops:

- **Redis** (``redis_url`` set): ``SET portail:background:leader <token> NX PX <ttl>``, renewed by the
  holder at every heartbeat (check-and-extend in a Lua script). A leader that dies stops renewing and
  another process takes over when the lease runs out (``ttl``). Redis unreachable: nobody leads
  (no double work), ``/readyz`` says so (``web/health.py``), and leadership resumes when it answers.
- **PostgreSQL** (no Redis): a session-level ``pg_try_advisory_lock`` held on a dedicated connection;
  it is released when that connection closes, so a crashed leader frees it at once.
- **SQLite**: an exclusive, non-blocking ``flock`` on ``<var_dir>/background.lock`` (SQLite
  deployments are one machine; several ``--workers`` share the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection

from portail.config import Settings
from portail.db import Database

ADVISORY_KEY = 0x504F5254_42474E44  # "PORT" "BGND": the runner's advisory-lock key
REDIS_KEY = "portail:background:leader"
LOCK_FILE = "background.lock"


class Leadership(Protocol):
    """Take or keep leadership (``acquire``, called at every heartbeat) and give it up (``release``)."""

    async def acquire(self) -> bool: ...

    async def release(self) -> None: ...


class FileLeadership:
    """SQLite: an exclusive, non-blocking ``flock`` held for the life of the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    async def acquire(self) -> bool:
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    async def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class PostgresLeadership:
    """PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection; lost with the connection."""

    def __init__(self, db: Database, key: int = ADVISORY_KEY) -> None:
        self.db = db
        self.key = key
        self.connection: Connection | None = None

    def _acquire(self) -> bool:
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection died: so did the lock
                self._drop()
        connection = self.db.engine.connect()
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            connection.commit()
        except Exception:
            connection.invalidate()
            raise
        if held:
            self.connection = connection
        else:
            connection.close()
        return held

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.invalidate()  # really close: a pooled connection would keep the lock
            self.connection = None

    async def acquire(self) -> bool:
        return await asyncio.to_thread(self._acquire)

    def _release(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self.connection.commit()
            self._drop()

    async def release(self) -> None:
        await asyncio.to_thread(self._release)


class RedisLeadership:
    """Redis: ``SET key token NX PX ttl``, renewed by the holder (check-and-extend in Lua)."""

    RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
    RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, redis_url: str, ttl_seconds: float, key: str = REDIS_KEY) -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.key = key
        self.token = secrets.token_hex(16)
        self.ttl_ms = max(int(ttl_seconds * 1000), 1000)

    async def acquire(self) -> bool:
        if await self.redis.eval(self.RENEW, 1, self.key, self.token, self.ttl_ms):
            return True
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.eval(self.RELEASE, 1, self.key, self.token)
        with contextlib.suppress(Exception):
            await self.redis.aclose()


def leadership_for(settings: Settings, db: Database, ttl_seconds: float) -> Leadership:
    """Redis when configured, else a PostgreSQL advisory lock, else a file lock (SQLite)."""
    if settings.redis_url:
        return RedisLeadership(settings.redis_url, ttl_seconds)
    if db.engine.dialect.name == "postgresql":
        return PostgresLeadership(db)
    return FileLeadership(settings.var_path / LOCK_FILE)
