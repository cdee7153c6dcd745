"""SQLite writers queue on a process lock (portail.db._serialize_sqlite_writers) and always let go of it."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import sqlalchemy as sa

from portail import db as database


def _engine(tmp_path: Path) -> sa.Engine:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    return engine


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one())


def test_concurrent_writers_all_commit(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(50):
                with engine.begin() as conn:
                    conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and _count(engine) == 400
    engine.dispose()


def test_the_lock_is_released_by_rollback_and_by_a_connection_returned_without_commit(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        conn.rollback()
    with engine.connect() as conn:  # neither committed nor rolled back: the pool resets it
        conn.execute(sa.text("INSERT INTO t VALUES (2)"))
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (3)"))
        done.set()

    worker = threading.Thread(target=write)
    worker.start()
    worker.join(10)
    assert done.is_set(), "a later writer waited for a lock nobody held any more"
    assert _count(engine) == 1
    engine.dispose()


def _write_rows(url: str, count: int) -> None:
    engine = database.make_engine(url)
    for _ in range(count):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()


def test_processes_sharing_the_file_queue_on_the_lock_file(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    url = str(engine.url)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_rows, args=(url, 150)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert _count(engine) == 450
    assert (tmp_path / "w.db-writer.lock").exists()
    engine.dispose()


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    engine = database.make_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    assert _count(engine) == 1
    assert not list(tmp_path.iterdir())
    engine.dispose()
