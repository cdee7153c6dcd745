"""The personal-data background jobs: build exports, drop expired archives, purge accounts whose
grace period is over, and push account events (SETs) to the tools.

The jobs are a task of the background runner (``portail/background.py``, ``register_tasks``): a
pass every ``privacy_jobs_interval_seconds`` in the leading process (0 turns it off; ``portail
privacy run-jobs`` runs one pass by hand), and at once in the process woken by a member's request
(an export asked for). Every job claims its rows with conditional updates, so several processes
never do the same work twice. Nothing here runs on a member's request: a page never waits for a tool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from portail.background import Runner, Task
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


TASK = "privacy-jobs"


def register_tasks(runner: Runner, database: Database, settings: Settings) -> Callable[[], None]:
    """The jobs as a task of the background runner: every ``privacy_jobs_interval_seconds`` on the
    leading process, and at once in this process when woken (the returned function: a member just
    asked for an export here)."""

    async def one_pass() -> None:
        await run_once(database, settings)

    runner.add(Task(TASK, one_pass, every=float(settings.privacy_jobs_interval_seconds)))
    return runner.waker(TASK)
