"""The personal-data background jobs: build exports, drop expired archives, purge accounts whose
grace period is over, and push account events (SETs) to the tools.

``PrivacyJobs`` runs in the application's lifespan (one per worker process) every
``privacy_jobs_interval_seconds`` (0 turns it off; ``portail privacy run-jobs`` runs one pass by
hand), and at once when woken (``wake``: a member just asked for an export). Every job claims its
rows with conditional updates, so several processes never do the same work twice. Nothing here
runs on a member's request: a page never waits for a tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from portail.config import Settings
from portail.consent import events, export, purge
from portail.db import Database

log = logging.getLogger("portail.consent.jobs")


@dataclass
class Pass:
    """What one pass did."""

    exports_built: int = 0
    archives_expired: int = 0
    purged: list[str] = field(default_factory=list)  # deletion references
    deliveries: dict[str, int] = field(default_factory=dict)


async def run_once(database: Database, settings: Settings) -> Pass:
    result = Pass()
    result.archives_expired = await database.run(export.expire)
    for export_id in await database.run(export.pending_ids):
        if await asyncio.to_thread(export.run, database, settings, export_id):
            result.exports_built += 1
    reports = await asyncio.to_thread(purge.purge_due, database, settings)
    result.purged = [r.reference for r in reports]
    await purge.log_out_devices(settings, reports)
    result.deliveries = await events.deliver_due(database, settings)
    return result


class PrivacyJobs:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if self.settings.privacy_jobs_interval_seconds <= 0:
            return
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="portail-privacy-jobs")

    def wake(self) -> None:
        """Thread-safe: run a pass now (no-op when the loop is off)."""
        if self._loop is not None and self._event is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    async def stop(self) -> None:
        self._loop = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        assert self._event is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self.settings.privacy_jobs_interval_seconds)
            self._event.clear()
            try:
                await run_once(self.database, self.settings)
            except Exception:  # a database hiccup must not stop the jobs
                log.exception("personal-data jobs failed")
