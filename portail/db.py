"""Database engine, session scope and migrations.

SQLite in WAL mode is the embedded default; PostgreSQL is chosen by URL
(``postgresql+psycopg://…``). The same SQLModel models and Alembic migrations serve both.
Migrations live in ``portail/migrations``, one Alembic branch per package (``accounts``, ``oidc``,
``federation``…) so packages evolve independently; ``upgrade heads`` applies them all.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine
from starlette.concurrency import run_in_threadpool

from portail.config import ConfigError, Settings

P = ParamSpec("P")
T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> dt.datetime:
    """Aware UTC timestamp: what every table stores (SQLModel's UTCDateTime columns)."""
    return dt.datetime.now(dt.UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


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


def upgrade(engine: Engine) -> None:
    """Apply every pending migration of every package branch."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


class Database:
    """The engine plus a session scope; one per application."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def call(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(session, …)`` in one unit of work."""
        with self.session() as session:
            return fn(session, *args, **kwargs)

    async def run(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(session, …)`` in one unit of work on a worker thread (handlers are async)."""
        return await run_in_threadpool(functools.partial(self.call, fn, *args, **kwargs))

    def dispose(self) -> None:
        self.engine.dispose()
