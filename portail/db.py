"""Database engine, session scope and migrations.

SQLite in WAL mode is the embedded default; PostgreSQL is chosen by URL
(``postgresql+psycopg://…``). The same SQLModel models and Alembic migrations serve both.
Migrations live in ``portail/migrations``, one Alembic branch per package (``accounts``, ``oidc``,
``federation``…) so packages evolve independently; ``upgrade heads`` applies them all.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import fcntl
import functools
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session, create_engine

from portail.config import ConfigError, Settings

P = ParamSpec("P")
T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("portail.db")
CONNECT_TIMEOUT_SECONDS = 5


def utcnow() -> dt.datetime:
    """Aware UTC timestamp: what every table stores (SQLModel's UTCDateTime columns)."""
    return dt.datetime.now(dt.UTC)


MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL (SQLite overflows only past 2**63)


def row_id(value: object) -> int | None:
    """``value`` (an int, or its decimal text from a path, query or JSON body) as a row id, or None when
    no row can have it: a client's number then never reaches the driver, where PostgreSQL would answer
    "integer out of range"."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdecimal()) or len(value) > 10:
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ROW_ID:
        return None
    return value


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class _WriterLock:
    """A lock between the threads of this process and, through ``flock`` on a file next to the
    database, between the processes sharing it (``serve --workers N``)."""

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = path
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # Opened per process: a descriptor inherited through fork would share its lock with the parent.
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def busy(self) -> bool:
        """Whether a thread of this process is inside a writing transaction right now."""
        return self._threads.locked()

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            return False
        if self._path is None:
            return True
        try:
            pause = 0.0005
            while True:
                try:
                    fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        self._threads.release()
                        return False
                    time.sleep(pause)  # another process writes: short naps, not SQLite's up to 100 ms
                    pause = min(pause * 2, 0.004)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        if self._path is not None and self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


# The writer lock of each SQLite engine (``Database.run_short`` looks at it).
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, _WriterLock] = weakref.WeakKeyDictionary()


def _serialize_sqlite_writers(engine: Engine, path: Path | None) -> None:
    """One writing transaction at a time, queued on a lock instead of SQLite's busy handler.

    SQLite admits one writer; a second one waits in the busy handler, which polls with sleeps of up
    to 100 ms. Under concurrent requests (every token issuance writes) that polling, not the work,
    set the pace: 16 concurrent clients got a few hundred requests per second with a p99 near 2 s.
    Taking a lock before the first write of a transaction (the pysqlite driver only begins the
    transaction then) and releasing it when the transaction ends makes writers queue and wake at
    once. Reads are untouched (WAL readers never wait). Threads queue on a ``threading.Lock``;
    processes sharing a database file (``serve --workers N``) on ``flock`` of ``<database>-writer.lock``.
    """
    lock = _WRITER_LOCKS[engine] = _WriterLock(path)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not conn.info.get("portail_write_lock") and statement.lstrip()[:6].upper() in _WRITES:
            # Same patience as SQLite's own busy timeout; a writer that waits longer fails as SQLite would.
            if not lock.acquire(timeout=30):
                raise sqlite3.OperationalError("database is locked (waited 30 s for the writer lock)")
            conn.info["portail_write_lock"] = True

    def _release(info: dict[str, Any]) -> None:
        if info.pop("portail_write_lock", False):
            lock.release()

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        _release(conn.info)

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        _release(conn.info)

    # A connection returned to the pool (or dropped) without a commit or rollback through SQLAlchemy.
    @event.listens_for(engine, "reset")
    def _reset(_dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
        _release(connection_record.info)

    @event.listens_for(engine, "close")
    def _close(_dbapi_connection: Any, connection_record: Any) -> None:
        _release(connection_record.info)

    @event.listens_for(engine, "invalidate")
    def _invalidate(_dbapi_connection: Any, connection_record: Any, exception: Any) -> None:
        _release(connection_record.info)


def make_engine(url: str, *, autocommit: bool = False) -> Engine:
    """The engine for ``url``. ``hide_parameters``: a database error's message (logged, and shown in
    tracebacks) names the statement but never its values: token hashes, addresses, names.

    ``autocommit`` (PostgreSQL): an engine whose connections stay in autocommit, with a pool of its
    own for ``Database.run_autocommit`` (switching a pooled connection to autocommit and back for
    every unit of work cost ~40 µs of CPU, ~6 % of a userinfo call)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        in_file = bool(database) and database != ":memory:" and "mode=memory" not in url
        if in_file:
            Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
        # As many pooled connections as request threads (anyio's default pool: 40), so that a busy
        # moment does not open and discard overflow connections (each open re-runs the pragmas).
        pool: dict[str, Any] = {"pool_size": 40, "max_overflow": 10} if in_file else {}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True, **pool
        )
        _serialize_sqlite_writers(engine, Path(f"{database}-writer.lock") if in_file else None)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # A bounded connect: when the network to PostgreSQL is cut, a request fails (503) instead of hanging.
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    pool = (
        {"isolation_level": "AUTOCOMMIT", "pool_size": SHORT_THREADS, "max_overflow": SHORT_THREADS}
        if autocommit
        else {"pool_size": 10, "max_overflow": 20}
    )
    engine = create_engine(url, connect_args=connect_args, hide_parameters=True, **pool)
    _ping_idle_connections(engine)
    return engine


IDLE_PING_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for a connection that sat in the pool for more than
    ``IDLE_PING_SECONDS``: one that died meanwhile (PostgreSQL restarted, the network was cut) is
    replaced before a request uses it.

    Why not ``pool_pre_ping`` itself: it costs one more round trip on every checkout, ~60-100 µs of
    this process's CPU per request on PostgreSQL, a few percent of a token request. Under load a
    connection goes back to work within milliseconds; a PostgreSQL restart or a network cut lasts
    longer than a second, so a connection that was idle for less than that was in the pool across
    no outage. (A connection that dies in use fails its request as before, and SQLAlchemy then
    invalidates the whole pool.)"""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["portail_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("portail_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or back from work a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise sa_exc.DisconnectionError(f"idle connection is gone: {exc}") from exc


def check_connection(engine: Engine) -> None:
    """Fail with one readable line when the database cannot be reached."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"Base de données injoignable (database_url) / database unreachable (database_url): {reason}"
        ) from exc


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


MIGRATION_LOCK_KEY = 0x504F5254_4D4947  # "PORT" "MIG": a constant advisory-lock key


def upgrade(engine: Engine) -> None:
    """Apply every pending migration of every package branch. On PostgreSQL, nodes starting at once
    queue on an advisory lock held until the migrating transaction commits: one migrates, the
    others then find the database current."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


@functools.cache
def _scripts() -> Any:
    """Alembic's view of the migration files (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def pending_migrations(applied: set[str]) -> list[str]:
    """The head revisions not yet reached from ``applied`` (the ``alembic_version`` rows; a revision
    that another branch depends on is reached without a row of its own)."""
    scripts = _scripts()
    reached = (
        {revision.revision for revision in scripts.iterate_revisions(tuple(applied), "base")} if applied else set()
    )
    return sorted(set(scripts.get_heads()) - reached)


def database_clock(db: Session) -> dt.datetime:
    """Now, by the clock every node agrees on: the database server's on PostgreSQL (nodes on several
    machines, whose clocks may drift apart), this machine's on SQLite (one machine, one clock).

    For what several nodes compare (an outbox lease taken by one and checked by another), so that a
    node whose clock is off by a minute neither steals a delivery another node is sending nor waits
    a minute too long for one it should retry."""
    if db.get_bind().dialect.name != "postgresql":
        return utcnow()
    value = db.execute(text("SELECT statement_timestamp()")).scalar_one()
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else utcnow()


def clock_offset(engine: Engine) -> float | None:
    """Seconds this node's clock runs ahead of the database server's (negative: behind), or None on
    SQLite (the same machine's clock). Measured against the midpoint of the round trip, so the
    error is at most half of it (a few milliseconds on a LAN)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        before = time.time()
        server = connection.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        after = time.time()
    return (before + after) / 2 - float(server)


def readiness(engine: Engine) -> dict[str, str]:
    """``/readyz``'s database checks: ``{"database": …, "migrations": …}``, each ``"ok"`` or what is wrong."""
    try:
        with engine.connect() as connection:
            applied = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except (OperationalError, InterfaceError, sa_exc.TimeoutError) as exc:
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip().splitlines()
        return {"database": f"unreachable: {reason[0] if reason else type(exc).__name__}", "migrations": "unknown"}
    except DBAPIError:
        return {"database": "ok", "migrations": "not applied (run: portail db upgrade)"}
    try:
        pending = pending_migrations(applied)
    except Exception as exc:  # a revision these files do not know: the database is newer than the code
        return {"database": "ok", "migrations": f"unknown revision in the database: {exc}"}
    if pending:
        return {"database": "ok", "migrations": f"pending: {', '.join(pending)} (run: portail db upgrade)"}
    return {"database": "ok", "migrations": "ok"}


SHORT_THREADS = 4  # PostgreSQL: the threads of short, hot work (Database._short_threads)
_AUTOCOMMIT_ENGINE_LOCK = threading.Lock()


def database_threads(settings: Settings) -> int:
    """How many threads run database work. SQLite work is short and CPU-bound: a few threads keep the
    GIL from handing the writer's turn around a crowd (measured: 4 threads served 8-10 % more token
    refreshes than 40, with half the p99); PostgreSQL work waits on the network and wants more."""
    if settings.database_threads > 0:
        return settings.database_threads
    return 4 if settings.database_url.startswith("sqlite") else 16


_AFTER_COMMIT: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "portail_after_commit", default=None
)


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the current unit of work (``Database.session``) has committed, and not at
    all if it rolls back; at once outside a unit of work. Used for side effects that must neither
    hold a transaction open (mail to a slow SMTP server) nor happen for work that was undone."""
    pending = _AFTER_COMMIT.get()
    if pending is None:
        action()
    else:
        pending.append(action)


_ON_ROLLBACK: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "portail_on_rollback", default=None
)


def on_rollback(action: Callable[[], None]) -> None:
    """Run ``action`` if the current unit of work (``Database.session``) rolls back, and not at all if
    it commits; never outside a unit of work. Used to give back what the work took from memory on
    the promise that the transaction keeps it (the buffered access counts, ``oidc.usage``)."""
    pending = _ON_ROLLBACK.get()
    if pending is not None:
        pending.append(action)


class Database:
    """The engine plus a session scope; one per application."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self._writer_lock = _WRITER_LOCKS.get(self.engine)  # SQLite only
        self._executor: ThreadPoolExecutor | None = None
        self._short_executor: ThreadPoolExecutor | None = None  # PostgreSQL: run_short, run_autocommit
        # PostgreSQL: run_autocommit's engine, with the engine it was made from (``_autocommitting``)
        self._autocommit_engine: tuple[Engine, Engine] | None = None
        # Values every unit of work carries in ``Session.info`` (the application's account extensions,
        # ``portail.accounts.extensions``): how a domain function reaches them through its ``db``.
        self.session_info: dict[str, object] = {}

    @contextmanager
    def session(self, *, autocommit: bool = False) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error. Actions registered with
        ``after_commit`` during it run after the commit, those registered with ``on_rollback`` after a
        rollback; a failing one is logged, not raised. ``autocommit``: see ``run_autocommit``."""
        pending: list[Callable[[], None]] = []
        undo: list[Callable[[], None]] = []
        marker, undo_marker = _AFTER_COMMIT.set(pending), _ON_ROLLBACK.set(undo)
        try:
            engine = self._autocommitting() if autocommit else self.engine
            with Session(engine, expire_on_commit=False, info=dict(self.session_info)) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    for action in undo:
                        try:
                            action()
                        except Exception:
                            log.exception("an action on rollback failed")
                    raise
        finally:
            _ON_ROLLBACK.reset(undo_marker)
            _AFTER_COMMIT.reset(marker)
        for action in pending:
            try:
                action()
            except Exception:
                log.exception("an action after commit failed")

    def call(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(session, …)`` in one unit of work."""
        with self.session() as session:
            return fn(session, *args, **kwargs)

    def call_autocommit(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call``, each statement committing on its own on PostgreSQL (``run_autocommit``)."""
        with self.session(autocommit=True) as session:
            return fn(session, *args, **kwargs)

    def _autocommitting(self) -> Engine:
        """The engine of autocommit units: ``self.engine`` on SQLite (see ``run_autocommit``), an
        engine of its own on PostgreSQL (``make_engine(autocommit=True)``)."""
        engine = self.engine
        if engine.dialect.name != "postgresql":
            return engine
        found = self._autocommit_engine
        if found is None or found[0] is not engine:
            # Made from ``self.engine`` (not the settings), and made again if it was replaced: the
            # autocommit units reach the same server as every other unit of work.
            with _AUTOCOMMIT_ENGINE_LOCK:
                found = self._autocommit_engine
                if found is None or found[0] is not engine:
                    if found is not None:
                        found[1].dispose()
                    url = engine.url.render_as_string(hide_password=False)
                    found = self._autocommit_engine = (engine, make_engine(url, autocommit=True))
        return found[1]

    def _threads(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=database_threads(self.settings), thread_name_prefix="portail-db"
            )
        return self._executor

    def _short_threads(self) -> ThreadPoolExecutor:
        """The threads of short, hot work on PostgreSQL (``run_short``, ``run_autocommit``): the
        protocol endpoints, and on every page the session-cookie lookup and the unread badge.

        Why a pool of its own, and a small one: a token request's statements each release the GIL
        while PostgreSQL answers, and with 16 threads taking turns every hand-off of the GIL is
        contended. With ``SHORT_THREADS`` (4) a refresh cost ~15-25 % less CPU and a code exchange
        ~10-20 % less than with 16 (``bench/oidc.py``, PostgreSQL, one worker, 16 clients; 2 and 8
        were no better), and p99 halved. Kept apart from ``database_threads`` so that slow page or
        background work (an export, a roster) never holds the threads a token request waits for."""
        if self._short_executor is None:
            self._short_executor = ThreadPoolExecutor(max_workers=SHORT_THREADS, thread_name_prefix="portail-db-short")
        return self._short_executor

    async def run(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(session, …)`` in one unit of work on a database thread (handlers are async)."""
        call = functools.partial(self.call, fn, *args, **kwargs)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._threads(), context.run, call)

    async def run_short(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``run`` for the hot paths (token, userinfo, introspection; on pages the session lookup
        and the unread badge): work of a few hundred microseconds, one short transaction, nothing
        slow inside (no mail, no HTTP).

        Why: on SQLite that work is local CPU work, and handing it to a database thread cost more
        than the work itself (measured: a refresh went from ~2.2 to ~1.8 ms of server CPU inline;
        the hop, the wake-ups and the writer-lock hand-offs between threads fighting for the GIL).
        So on SQLite it runs inline on the event loop's thread, unless a database thread of this
        process is inside a writing transaction at that moment (a background job, a page): then
        the event loop must not wait for it, and the work hops to a thread as ``run`` does.
        PostgreSQL work waits on the network: always a thread, one of the few kept for this work
        (``_short_threads``)."""
        lock = self._writer_lock
        if lock is not None and not lock.busy():
            return self.call(fn, *args, **kwargs)
        if lock is not None:
            return await self.run(fn, *args, **kwargs)
        call = functools.partial(self.call, fn, *args, **kwargs)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._short_threads(), context.run, call)

    async def run_autocommit(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``run_short`` for work whose statements need not be one transaction: reads that decide
        (is this token valid, which client is this) followed at most by writes that each stand on
        their own (an access-log upsert, an insert that ignores a conflict). Userinfo, introspection
        and the client-credentials grant.

        Why: on PostgreSQL a transaction costs two round trips of its own, BEGIN and COMMIT, as many
        as the work itself (userinfo: one SELECT and one upsert). In autocommit each statement
        commits by itself, and what each one sees is what a READ COMMITTED transaction (PostgreSQL's
        default) would have seen: every statement has its own snapshot there too. A revocation
        committed before the request's statement is seen by it, as before. On SQLite the driver
        begins a transaction only at the first write, so there is nothing to save: ``run_short``."""
        if self.engine.dialect.name != "postgresql":
            return await self.run_short(fn, *args, **kwargs)
        call = functools.partial(self.call_autocommit, fn, *args, **kwargs)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._short_threads(), context.run, call)

    def readiness(self) -> dict[str, str]:
        """The database checks of ``/readyz`` (see ``readiness``); blocking."""
        return readiness(self.engine)

    def dispose(self) -> None:
        for executor in (self._executor, self._short_executor):
            if executor is not None:
                executor.shutdown(wait=False)
        self._executor = self._short_executor = None
        self.engine.dispose()
        if self._autocommit_engine is not None:
            self._autocommit_engine[1].dispose()
