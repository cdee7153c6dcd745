"""The background runner (``portail/background.py``) and its one leader election (``portail/leadership.py``):
a file lock on SQLite, a PostgreSQL advisory lock, a Redis lease (real PostgreSQL and Redis); leader-only
tasks run only on the leader, a wake runs a pass here whatever leads, a failing pass does not stop its
task, Redis unreachable means nobody leads (and ``/readyz`` says so), and ``stop`` lets a running pass
finish then frees leadership at once for another process."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from portail import background, metrics
from portail.app import create_app
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database
from portail.leadership import FileLeadership, PostgresLeadership, RedisLeadership, leadership_for
from tests.conftest import BASE_URL, make_settings

# ---------------------------------------------------------------- one leader


def _two_contenders(first: object, second: object) -> list[bool]:
    async def scenario() -> list[bool]:
        got = [await first.acquire(), await second.acquire(), await first.acquire()]  # type: ignore[attr-defined]
        await first.release()  # type: ignore[attr-defined]
        got.append(await second.acquire())  # type: ignore[attr-defined]
        await second.release()  # type: ignore[attr-defined]
        return got

    return asyncio.run(scenario())


def test_one_leader_on_sqlite_through_a_file_lock(unit_settings: Settings) -> None:
    db = Database(unit_settings)
    try:
        assert isinstance(leadership_for(unit_settings, db, 15), FileLeadership)
    finally:
        db.dispose()
    path = unit_settings.var_path / "background.lock"
    assert _two_contenders(FileLeadership(path), FileLeadership(path)) == [True, False, True, True]


@pytest.mark.postgres
def test_one_leader_on_postgresql_through_an_advisory_lock(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, postgres_url)
    one, two = Database(settings), Database(settings)
    try:
        assert isinstance(leadership_for(settings, one, 15), PostgresLeadership)
        assert _two_contenders(PostgresLeadership(one), PostgresLeadership(two)) == [True, False, True, True]
    finally:
        one.dispose()
        two.dispose()


def test_one_leader_with_redis_through_a_renewed_lease(unit_settings: Settings, redis_url: str) -> None:
    settings = unit_settings.replace(redis_url=redis_url)
    db = Database(settings)
    try:
        assert isinstance(leadership_for(settings, db, 15), RedisLeadership)
    finally:
        db.dispose()

    async def scenario() -> list[bool]:
        first, second = RedisLeadership(redis_url, 15), RedisLeadership(redis_url, 15)
        got = [await first.acquire(), await second.acquire(), await first.acquire()]
        await first.release()
        got.append(await second.acquire())
        await second.release()
        return got

    assert asyncio.run(scenario()) == [True, False, True, True]


def test_a_redis_lease_that_is_not_renewed_passes_to_another_process(redis_url: str) -> None:
    async def scenario() -> list[bool]:
        dead, other = RedisLeadership(redis_url, 1), RedisLeadership(redis_url, 1)
        got = [await dead.acquire(), await other.acquire()]
        await asyncio.sleep(1.3)  # the holder died: it renews no more
        got.append(await other.acquire())
        await other.release()
        await dead.redis.aclose()
        return got

    assert asyncio.run(scenario()) == [True, False, True]


# ---------------------------------------------------------------- the runner


class Fixed:
    """A leadership whose answer the test sets (``None``: coordination unreachable)."""

    def __init__(self, leads: bool | None) -> None:
        self.leads = leads
        self.released = False

    async def acquire(self) -> bool:
        if self.leads is None:
            raise ConnectionError("redis down")
        return self.leads

    async def release(self) -> None:
        self.released = True


def _run_for(runner: Runner, seconds: float, during: object = None) -> None:
    async def scenario() -> None:
        runner.start()
        try:
            if callable(during):
                await asyncio.sleep(0.05)
                during()
            await asyncio.sleep(seconds)
        finally:
            await runner.stop()

    asyncio.run(scenario())


def _counting(name: str, every: float, *, leader_only: bool = True) -> tuple[Task, list[int]]:
    runs: list[int] = []

    async def run() -> None:
        runs.append(1)

    return Task(name, run, every=every, first_delay=0.0, leader_only=leader_only), runs


def test_leader_only_tasks_run_on_the_leader_and_not_elsewhere(db: Database, unit_settings: Settings) -> None:
    for leads, expect_runs in ((True, True), (False, False), (None, False)):
        runner = Runner(unit_settings, db, leadership=Fixed(leads), heartbeat=0.05)
        task, runs = _counting("probes", 0.05)
        everywhere, everywhere_runs = _counting("everywhere", 0.05, leader_only=False)
        runner.add(task)
        runner.add(everywhere)
        _run_for(runner, 0.4)
        assert bool(runs) is expect_runs, leads
        assert everywhere_runs, "a task for every process runs whatever leads"
        assert runner.leads is False  # stopped: leads nothing any more


def test_the_leader_gauge_says_what_this_process_leads(db: Database, unit_settings: Settings) -> None:
    runner = Runner(unit_settings, db, leadership=Fixed(True), heartbeat=0.05)
    runner.add(_counting("gauge-task", 10)[0])
    seen: list[float] = []

    async def scenario() -> None:
        runner.start()
        await asyncio.sleep(0.2)
        seen.append(metrics.LEADER.labels("gauge-task")._value.get())
        await runner.stop()
        seen.append(metrics.LEADER.labels("gauge-task")._value.get())

    asyncio.run(scenario())
    assert seen == [1.0, 0.0]


def test_a_wake_runs_a_pass_here_even_when_another_process_leads(db: Database, unit_settings: Settings) -> None:
    runner = Runner(unit_settings, db, leadership=Fixed(False), heartbeat=0.05)
    task, runs = _counting("backchannel", 3600)
    task.first_delay = 3600
    runner.add(task)
    _run_for(runner, 0.3, during=runner.waker("backchannel"))
    assert runs == [1]


def test_a_wake_from_another_thread_is_safe_and_a_wake_when_stopped_is_a_no_op(
    db: Database, unit_settings: Settings
) -> None:
    runner = Runner(unit_settings, db, leadership=Fixed(False), heartbeat=0.05)
    task, runs = _counting("jobs", 3600)
    task.first_delay = 3600
    runner.add(task)
    runner.wake("jobs")  # not started: nothing happens, nothing raises

    async def scenario() -> None:
        runner.start()
        await asyncio.sleep(0.05)
        await asyncio.to_thread(runner.wake, "jobs")
        await asyncio.sleep(0.2)
        await runner.stop()

    asyncio.run(scenario())
    runner.wake("jobs")
    assert runs == [1]


def test_a_failing_pass_is_counted_and_the_task_goes_on(db: Database, unit_settings: Settings) -> None:
    runner = Runner(unit_settings, db, leadership=Fixed(True), heartbeat=0.05)
    attempts: list[int] = []

    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database hiccup")

    task = runner.add(Task("flaky", flaky, every=0.05, first_delay=0.0))
    before = metrics.BACKGROUND_RUNS.labels("flaky", "error")._value.get()
    _run_for(runner, 0.4)
    assert len(attempts) >= 2 and task.passes == len(attempts) - 1
    assert metrics.BACKGROUND_RUNS.labels("flaky", "error")._value.get() == before + 1


def test_a_task_failing_every_pass_logs_one_traceback_then_a_line_a_minute_and_its_recovery(
    db: Database, unit_settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-second task during a database outage: every failure counted, not every one logged."""
    monkeypatch.setattr(background, "FAILURE_LOG_SECONDS", 0.25)
    runner = Runner(unit_settings, db, leadership=Fixed(True), heartbeat=0.05)
    attempts: list[int] = []
    outage = {"on": True}

    async def flush() -> None:
        attempts.append(1)
        if outage["on"]:
            raise ConnectionError("base de données injoignable")

    task = runner.add(Task("flush", flush, every=0.02, first_delay=0.0, leader_only=False))
    before = metrics.BACKGROUND_RUNS.labels("flush", "error")._value.get()

    async def back_later() -> None:
        await asyncio.sleep(0.6)
        outage["on"] = False

    with caplog.at_level(logging.INFO, logger="portail.background"):
        _run_for(runner, 0.9, during=lambda: asyncio.get_running_loop().create_task(back_later()))
    failed = int(metrics.BACKGROUND_RUNS.labels("flush", "error")._value.get() - before)
    records = [r for r in caplog.records if "flush" in r.getMessage()]
    tracebacks = [r for r in records if r.exc_info]
    still = [r for r in records if "still failing" in r.getMessage()]
    recovered = [r for r in records if "works again" in r.getMessage()]
    assert failed >= 10 and task.passes >= 1  # it ran every period, failing, then worked
    assert len(tracebacks) == 1 and "injoignable" in str(tracebacks[0].exc_info[1])  # type: ignore[index]
    assert 1 <= len(still) <= 3  # ~0.6 s of failures, one line per 0.25 s at most
    assert len(recovered) == 1 and f"after {failed} failures" in recovered[0].getMessage()
    assert task.failures == 0


def test_a_disabled_task_never_runs(db: Database, unit_settings: Settings) -> None:
    runner = Runner(unit_settings, db, leadership=Fixed(True), heartbeat=0.05)
    task, runs = _counting("off", 0)
    runner.add(task)
    _run_for(runner, 0.2, during=runner.waker("off"))
    assert runs == []
    with pytest.raises(ValueError):
        runner.add(Task("off", task.run, every=1))


def test_stop_lets_a_running_pass_finish_then_gives_leadership_up(db: Database, unit_settings: Settings) -> None:
    leadership = Fixed(True)
    runner = Runner(unit_settings, db, leadership=leadership, heartbeat=0.05, grace=5)
    finished: list[str] = []
    closed: list[str] = []

    async def slow() -> None:
        await asyncio.sleep(0.3)
        finished.append("done")

    async def cleanup() -> None:
        closed.append("closed")

    runner.add(Task("slow", slow, every=10, first_delay=0.0))
    runner.on_stop(cleanup)

    async def scenario() -> None:
        runner.start()
        await asyncio.sleep(0.1)  # the pass is under way
        await runner.stop()

    asyncio.run(scenario())
    assert finished == ["done"] and closed == ["closed"] and leadership.released


def test_stop_cancels_a_pass_that_outlasts_the_grace(db: Database, unit_settings: Settings) -> None:
    runner = Runner(unit_settings, db, leadership=Fixed(True), heartbeat=0.05, grace=0.1)
    cancelled: list[bool] = []

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    runner.add(Task("stuck", stuck, every=10, first_delay=0.0))
    _run_for(runner, 0.1)
    assert cancelled == [True]


# ---------------------------------------------------------------- in the application


def test_the_application_registers_every_background_task_on_one_runner(unit_settings: Settings) -> None:
    app = create_app(unit_settings.replace(probe_interval_seconds=30), migrate=True)
    runner: Runner = app.state.background
    assert set(runner.tasks) == {
        "session-expiry",
        "login-throttle-purge",
        "revoked-token-purge",
        "backchannel",
        "assertion-purge",
        "probes",
        "notifications",
        "privacy-jobs",
        "access-log",
    }
    assert not runner.tasks["access-log"].leader_only  # every node writes its own counts
    with TestClient(app, base_url=BASE_URL):
        assert runner.started
    assert not runner.started


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_unreachable_nobody_leads_and_readyz_says_so(unit_settings: Settings) -> None:
    settings = unit_settings.replace(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    app = create_app(settings, migrate=True)
    runner: Runner = app.state.background
    runner.heartbeat = 0.1
    with TestClient(app, base_url=BASE_URL) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] != "ok"
        assert runner.leads is False
