"""The background runner: every periodic or on-demand task of a Portail process, one leader for all.

``create_app`` builds one ``Runner`` (``app.state.background``); the packages register their tasks
on it (``register_tasks`` functions: the back-channel logout sender and the expired-session sweep,
the instance prober, the notification pulls and digests, the personal-data jobs) and the
application's lifespan starts and stops it.

- **One leader** (``leadership.py``: Redis lock, else PostgreSQL advisory lock, else a file lock):
  a heartbeat takes or keeps leadership every ``heartbeat`` seconds. A task marked ``leader_only``
  runs its periodic passes only in the leading process; when the leader stops, another process
  takes over at its next heartbeat (at once on PostgreSQL and SQLite, after the lease of three
  heartbeats with Redis). ``portail_background_leader{task}`` shows, per node, what it leads.
- **On demand**: ``wake(name)`` (thread-safe) runs a task's pass now, in this process, leader or
  not — work a request on this node just created (a logout to send, an export to build). Such tasks
  claim their rows with conditional updates, so two processes never do the same row twice.
- **Jitter**: each wait is the task's period ± 10 %, so nodes started together do not hit the
  database and the instances in step.
- **Failures**: a pass that raises is counted (``portail_background_runs_total``) and the task goes
  on at its next period; one task's failure never stops another. The first failure is logged with
  its traceback; while the task keeps failing, one line at most every ``FAILURE_LOG_SECONDS`` says
  so (a one-second task during a database outage would otherwise log sixty tracebacks a minute),
  and a line says when it works again.
- **Graceful shutdown**: ``stop`` lets running passes finish for up to ``grace`` seconds, then
  cancels them and gives leadership up, so another node takes over without waiting for a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from portail import metrics
from portail.config import Settings
from portail.db import Database
from portail.leadership import Leadership, leadership_for

log = logging.getLogger("portail.background")

HEARTBEAT_SECONDS = 5.0
LEASE_HEARTBEATS = 3  # a Redis lease lasts three heartbeats: one missed renewal does not lose it
GRACE_SECONDS = 10.0
JITTER = 0.1
FAILURE_LOG_SECONDS = 60.0


@dataclass
class Task:
    """A background task: ``run`` is one pass; it runs every ``every`` seconds (``<= 0``: never,
    and ``wake`` is a no-op), the first time after ``first_delay`` (default: one period)."""

    name: str
    run: Callable[[], Awaitable[object]]
    every: float
    first_delay: float | None = None
    leader_only: bool = True
    passes: int = field(default=0, init=False)  # passes run in this process (tests, diagnostics)
    failures: int = field(default=0, init=False)  # passes failed in a row
    failure_logged_at: float = field(default=0.0, init=False)  # time.monotonic() of the last failure logged


class Runner:
    """Runs the registered tasks; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        leadership: Leadership | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self.settings = settings
        self.db = db
        self.heartbeat = heartbeat
        self.grace = grace
        self._leadership = leadership
        self.tasks: dict[str, Task] = {}
        self.leads = False
        self._events: dict[str, asyncio.Event] = {}
        self._running: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._on_stop: list[Callable[[], Awaitable[object]]] = []

    # ------------------------------------------------------------ registration

    def add(self, task: Task) -> Task:
        if task.name in self.tasks:
            raise ValueError(f"background task {task.name!r} registered twice")
        self.tasks[task.name] = task
        return task

    def on_stop(self, cleanup: Callable[[], Awaitable[object]]) -> None:
        """``cleanup()`` runs after the tasks have stopped (close a task's HTTP clients…)."""
        self._on_stop.append(cleanup)

    def wake(self, name: str) -> None:
        """Thread-safe: run a pass of ``name`` now in this process (no-op when not running)."""
        with self._lock:
            loop, event = self._loop, self._events.get(name)
            if loop is not None and event is not None and not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def waker(self, name: str) -> Callable[[], None]:
        """A function waking ``name`` (given to the code that creates its work)."""
        return lambda: self.wake(name)

    # ------------------------------------------------------------ life

    @property
    def started(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        """Start the heartbeat and every enabled task (in the running event loop)."""
        if self._loop is not None:
            return
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        enabled = [t for t in self.tasks.values() if t.every > 0]
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._events = {task.name: asyncio.Event() for task in enabled}
        if any(t.leader_only for t in enabled):
            if self._leadership is None:
                self._leadership = leadership_for(self.settings, self.db, self.heartbeat * LEASE_HEARTBEATS)
            self._running.append(asyncio.create_task(self._heartbeat(), name="portail-background-heartbeat"))
        else:
            self._ready.set()
        for task in enabled:
            self._running.append(asyncio.create_task(self._task_loop(task), name=f"portail-background-{task.name}"))

    async def stop(self) -> None:
        """Let running passes finish (up to ``grace`` seconds), cancel the rest, give leadership up."""
        if self._loop is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        with self._lock:
            self._loop = None
        running, self._running = self._running, []
        if running:
            _done, pending = await asyncio.wait(running, timeout=self.grace)
            for left in pending:
                left.cancel()
            for left in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await left
        for cleanup in self._on_stop:
            try:
                await cleanup()
            except Exception:
                log.exception("background cleanup failed")
        if self._leadership is not None:
            with contextlib.suppress(Exception):
                await self._leadership.release()
        self._set_leads(False)

    # ------------------------------------------------------------ loops

    def _set_leads(self, leads: bool) -> None:
        self.leads = leads
        for task in self.tasks.values():
            if task.leader_only and task.every > 0:
                metrics.LEADER.labels(task.name).set(1 if leads else 0)

    async def _heartbeat(self) -> None:
        assert self._leadership is not None and self._ready is not None and self._stopping is not None
        unreachable = False
        while not self._stopping.is_set():
            try:
                leads = await self._leadership.acquire()
                if unreachable:
                    log.warning("background leadership: coordination reachable again")
                unreachable = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database unreachable: nobody here leads
                if not unreachable:
                    log.warning("background leadership: coordination unreachable (%s); not leading", type(exc).__name__)
                unreachable = True
                leads = False
            if leads != self.leads:
                log.info("background leadership %s", "taken" if leads else "lost")
            self._set_leads(leads)
            self._ready.set()
            await self._sleep(self.heartbeat, None)

    async def _sleep(self, seconds: float, event: asyncio.Event | None) -> bool:
        """Wait ``seconds``, or less when ``event`` is set (True) or the runner stops (False)."""
        assert self._stopping is not None
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        woken = event is not None and event.is_set()
        if woken and event is not None:
            event.clear()
        return woken and not self._stopping.is_set()

    async def _task_loop(self, task: Task) -> None:
        assert self._ready is not None and self._stopping is not None
        await self._ready.wait()
        event = self._events[task.name]
        delay = task.every if task.first_delay is None else task.first_delay
        while not self._stopping.is_set():
            woken = await self._sleep(delay, event)
            delay = task.every * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - jitter, not a secret
            if self._stopping.is_set():
                return
            if task.leader_only and not woken and not self.leads:
                continue
            await self._pass(task)

    async def _pass(self, task: Task) -> None:
        try:
            await task.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a database or network hiccup must not stop the task
            metrics.BACKGROUND_RUNS.labels(task.name, "error").inc()
            _log_failure(task, exc)
        else:
            task.passes += 1
            metrics.BACKGROUND_RUNS.labels(task.name, "ok").inc()
            if task.failures:
                log.warning(
                    "Tâche %s rétablie après %d échecs / background task %s works again after %d failures",
                    task.name,
                    task.failures,
                    task.name,
                    task.failures,
                )
                task.failures = 0


def _log_failure(task: Task, exc: Exception) -> None:
    """The first failure in a row with its traceback, then one line per ``FAILURE_LOG_SECONDS``."""
    task.failures += 1
    now = time.monotonic()
    if task.failures == 1:
        task.failure_logged_at = now
        log.error("background task %s failed", task.name, exc_info=exc)
    elif now - task.failure_logged_at >= FAILURE_LOG_SECONDS:
        task.failure_logged_at = now
        log.error(
            "Tâche %s toujours en échec (%d fois de suite) / background task %s still failing (%d in a row): %s",
            task.name,
            task.failures,
            task.name,
            task.failures,
            f"{type(exc).__name__}: {exc}"[:300],
        )
