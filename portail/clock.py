"""Is this node's clock right? Every minute each node compares its clock with the database server's.

Nodes on several machines each have their own clock; NTP keeps them within milliseconds, and a
deployment must run it (``docs/deploy.md``). When it fails, what several nodes compare still works:
outbox leases are read on the database's clock (``db.database_clock``), and so is the refresh
grace window on PostgreSQL. What a node stamps by its own clock drifts with it: token
``iat``/``exp`` (tools allow a little leeway), a client-wide revocation of client-credentials
tokens, an authenticator app's code (a node a minute off refuses good codes).
So the gap is measured and shown, not corrected behind the operator's back:

- ``portail_clock_offset_seconds``: this node's clock minus the database's (PostgreSQL only: on
  SQLite every process reads the same machine's clock);
- a warning in the log, in French and English, when the gap reaches ``WARN_SECONDS``, and a line
  when it is back under.
"""

from __future__ import annotations

import asyncio
import logging

from portail import metrics
from portail.background import Runner, Task
from portail.db import Database, clock_offset

log = logging.getLogger("portail.clock")

CHECK_SECONDS = 60.0
WARN_SECONDS = 5.0  # a TOTP step is 30 s, token leeways a few seconds: warn well before


class ClockWatch:
    """Measures the gap and says when it crosses ``WARN_SECONDS`` (once per crossing, not every minute)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.offset: float | None = None
        self.warned = False

    def check(self) -> float | None:
        """Measure now (blocking: one round trip); the offset in seconds, None on SQLite."""
        offset = clock_offset(self.db.engine)
        self.offset = offset
        if offset is None:
            return None
        metrics.CLOCK_OFFSET.set(offset)
        if abs(offset) >= WARN_SECONDS and not self.warned:
            log.warning(
                "L'horloge de ce nœud s'écarte de %+.1f s de celle de la base de données : synchronisez-la "
                "(NTP) / this node's clock is %+.1f s off the database server's: synchronize it (NTP)",
                offset,
                offset,
            )
        elif abs(offset) < WARN_SECONDS and self.warned:
            log.info(
                "L'horloge de ce nœud est de nouveau juste (%+.3f s) / this node's clock is right again (%+.3f s)",
                offset,
                offset,
            )
        self.warned = abs(offset) >= WARN_SECONDS
        return offset


def register_tasks(runner: Runner, db: Database) -> ClockWatch | None:
    """The check runs on every node (not only the leader), at start then every minute; nothing on
    SQLite."""
    if db.engine.dialect.name != "postgresql":
        return None
    watch = ClockWatch(db)

    async def check() -> None:
        await asyncio.to_thread(watch.check)

    runner.add(Task("clock-check", check, every=CHECK_SECONDS, first_delay=0.0, leader_only=False))
    return watch
