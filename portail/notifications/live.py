"""Live updates across worker processes: "member M has something new".

A ``Broker`` keeps, in each process, the open Server-Sent-Event streams per member, and carries
wake-ups between processes: Redis pub/sub when ``redis_url`` is set, else PostgreSQL
``LISTEN``/``NOTIFY`` on PostgreSQL, else (SQLite: one process) in-process queues. The message only
says which member and which notification; each stream then reads what is new from the database, so
nothing personal travels through Redis or NOTIFY payloads beyond ids. Each process runs one listener
task, started with the first stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy.engine import make_url

from portail.config import Settings

log = logging.getLogger("portail.notifications")
CHANNEL = "portail_notifications"


class Broker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.redis_url:
            self.backend = "redis"
        elif settings.database_url.startswith("postgresql"):
            self.backend = "postgresql"
        else:
            self.backend = "memory"
        self._queues: dict[int, set[asyncio.Queue[int]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._redis: Any = None
        self._pg: Any = None
        self._lock: asyncio.Lock | None = None

    # ---------------------------------------------------------------- publishing

    async def publish(self, events: Iterable[tuple[int, int]]) -> None:
        """Announce (member id, notification id) pairs to every process."""
        pairs = list(events)
        if not pairs:
            return
        if self.backend == "memory":
            for member_id, notification_id in pairs:
                self._deliver(member_id, notification_id)
            return
        latest = _latest_per_member(pairs)
        payloads = [json.dumps(latest[i : i + 300]) for i in range(0, len(latest), 300)]  # NOTIFY payload < 8000 B
        try:
            if self.backend == "redis":
                redis = await self._redis_client()
                for payload in payloads:
                    await redis.publish(CHANNEL, payload)
            else:
                await self._pg_notify(payloads)
        except Exception:  # live updates are best effort: the inbox itself is in the database
            log.warning("live fan-out failed", exc_info=True)

    async def _redis_client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(str(self.settings.redis_url))
        return self._redis

    def _conninfo(self) -> str:
        url = make_url(self.settings.database_url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def _pg_notify(self, payloads: list[str]) -> None:
        import psycopg

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._pg is None or self._pg.closed:
                self._pg = await psycopg.AsyncConnection.connect(self._conninfo(), autocommit=True)
            async with self._pg.cursor() as cursor:
                for payload in payloads:
                    await cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    # ---------------------------------------------------------------- listening

    def _deliver(self, member_id: int, notification_id: int) -> None:
        for queue in self._queues.get(member_id, ()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(notification_id)

    def _on_message(self, raw: str | bytes) -> None:
        """A message is a JSON list of [member id, newest notification id] pairs."""
        try:
            for member_id, notification_id in json.loads(raw):
                self._deliver(int(member_id), int(notification_id))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed live message")

    async def _listen_redis(self) -> None:
        redis = await self._redis_client()
        pubsub = redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        assert self._ready is not None
        self._ready.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._on_message(message["data"])
        finally:
            await pubsub.aclose()

    async def _listen_pg(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self._conninfo(), autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            assert self._ready is not None
            self._ready.set()
            async for notify in conn.notifies():
                self._on_message(notify.payload)

    async def _listen_forever(self) -> None:
        while True:
            try:
                await (self._listen_redis() if self.backend == "redis" else self._listen_pg())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live listener lost its connection; retrying", exc_info=True)
                await asyncio.sleep(1)

    async def start(self) -> None:
        """Start this process's listener (idempotent) and wait until it listens."""
        if self.backend == "memory":
            return
        if self._listener is None or self._listener.done():
            self._ready = asyncio.Event()
            self._listener = asyncio.create_task(self._listen_forever())
        assert self._ready is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    @contextlib.asynccontextmanager
    async def subscribe(self, member_id: int) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue receiving the ids of the member's new notifications while the context is open."""
        await self.start()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=100)
        self._queues.setdefault(member_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues.get(member_id, set())
            queues.discard(queue)
            if not queues:
                self._queues.pop(member_id, None)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._pg is not None:
            await self._pg.close()
            self._pg = None


def _latest_per_member(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    latest: dict[int, int] = {}
    for member_id, notification_id in pairs:
        latest[member_id] = max(notification_id, latest.get(member_id, 0))
    return sorted(latest.items())
