"""What each token issuance and userinfo call leaves behind:

- ``SessionClient``: the clients that received tokens within a login session (``sid``), whom
  back-channel logout tells when that session ends (oidc-logout reads it). Written in the same
  transaction as the issuance: a logout must never miss a client.
- ``DataAccess``: per member × client × kind (``token`` | ``userinfo``) × day counters, the
  access log members see under Law 25.

Why the access counts are buffered: one upsert per protocol request was the only write of a
userinfo call and a round trip of every token request (~10 % of a userinfo's CPU on SQLite, one of
two statements on PostgreSQL), and on a busy day every request of one member × tool upserted the
same row, one after another. An application's ``AccessCounts`` (``install``, attached to its
``Database``) adds the counts up in memory and writes them in one transaction:

- every ``FLUSH_SECONDS`` on every node (background task ``access-log``, not only the leader);
- when the node stops (the runner's ``on_stop``);
- before anything in this process reads the log (``access_log``: the member's pages, the export)
  or purges an account (``purge.known_clients``), in the reader's own transaction.

What this costs: another node's last second of counts appears up to ``FLUSH_SECONDS`` later, and a
node killed outright (``SIGKILL``, power loss) loses at most that second of its own counts. A flush
that fails (database unreachable) puts its counts back for the next one. Counts of a member whose
account was purged meanwhile are dropped at the flush, never written back. A ``Database`` without
``AccessCounts`` (a unit test's, a command's) writes each count at once, as before.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, select
from sqlmodel import Session

from portail.accounts.models import Member
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database, on_rollback, utcnow
from portail.oidc.models import DataAccess, SessionClient
from portail.oidc.upserts import prepared

log = logging.getLogger("portail.oidc.usage")

FLUSH_SECONDS = 1.0
_KEY = "portail.oidc.usage"

# member × client × kind × local day: one DataAccess row
Key = tuple[int, str, str, dt.date]


@dataclass
class Pending:
    """Accesses counted in memory and not yet written to their ``DataAccess`` row."""

    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    scopes: str

    def merge(self, later: Pending) -> None:
        """Add ``later``'s accesses (counted after these) to these."""
        self.count += later.count
        self.first_at = min(self.first_at, later.first_at)
        if later.last_at >= self.last_at:
            self.last_at, self.scopes = later.last_at, later.scopes


def _session_client_upsert(insert: Any) -> Any:
    columns = ("sid", "client_id", "member_id", "first_at", "last_at")
    return (
        insert(SessionClient.__table__)  # type: ignore[attr-defined]
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_update(index_elements=["sid", "client_id"], set_={"last_at": bindparam("last_at")})
    )


def _access_upsert(insert: Any) -> Any:
    table = DataAccess.__table__  # type: ignore[attr-defined]
    columns = ("member_id", "client_id", "kind", "day", "first_at", "last_at", "scopes", "count")
    statement = insert(table).values({name: bindparam(name) for name in columns})
    new, row = statement.excluded, table.c
    # Two nodes' flushes may land in either order: keep the earliest first access, the latest last
    # access and the scopes of that latest one.
    later = new.last_at > row.last_at
    return statement.on_conflict_do_update(
        index_elements=["member_id", "client_id", "kind", "day"],
        set_={
            "count": row.count + new.count,
            "first_at": case((new.first_at < row.first_at, new.first_at), else_=row.first_at),
            "last_at": case((later, new.last_at), else_=row.last_at),
            "scopes": case((later, new.scopes), else_=row.scopes),
        },
    )


class AccessCounts:
    """The access counts of one application not yet written (see the module docstring); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, Pending] = {}

    def attach(self, database: Database) -> AccessCounts:
        database.session_info[_KEY] = self
        return self

    def add(self, key: Key, at: dt.datetime, scopes: str) -> None:
        with self._lock:
            found = self._pending.get(key)
            if found is None:
                self._pending[key] = Pending(1, at, at, scopes)
            else:
                found.count += 1
                found.last_at, found.scopes = at, scopes

    def pending(self) -> int:
        """How many rows the next flush writes."""
        with self._lock:
            return len(self._pending)

    def _take(self) -> dict[Key, Pending]:
        with self._lock:
            taken, self._pending = self._pending, {}
        return taken

    def _put_back(self, taken: dict[Key, Pending]) -> None:
        with self._lock:
            for key, earlier in taken.items():
                later = self._pending.get(key)
                if later is not None:
                    earlier.merge(later)
                self._pending[key] = earlier

    def write(self, db: Session) -> int:
        """Write what is pending within ``db``'s transaction (a ``Database.session`` unit of work);
        the rows written. If the statement fails, or the caller's transaction later rolls back
        (a page failing after it, a purge refused), the counts go back to the buffer."""
        taken = self._take()
        if not taken:
            return 0
        try:
            written = _write(db, taken)
        except BaseException:
            self._put_back(taken)
            raise
        on_rollback(lambda: self._put_back(taken))
        return written

    def flush(self, database: Database) -> int:
        """Write what is pending in a transaction of its own (background task, stop)."""
        taken = self._take()
        if not taken:
            return 0
        try:
            with database.session() as db:
                return _write(db, taken)
        except BaseException:
            self._put_back(taken)
            raise


def _write(db: Session, taken: dict[Key, Pending]) -> int:
    member_ids = sorted({key[0] for key in taken})
    # A member purged since these accesses: their counts go with them (the foreign key would refuse them).
    members = Member.__table__.c  # type: ignore[attr-defined]
    existing = set(db.connection().execute(select(members.id).where(members.id.in_(member_ids))).scalars())
    params = [
        {
            "member_id": member_id,
            "client_id": client_id,
            "kind": kind,
            "day": day,
            "first_at": p.first_at,
            "last_at": p.last_at,
            "scopes": p.scopes,
            "count": p.count,
        }
        # Sorted: two nodes flushing at once take the rows' locks in the same order (no deadlock).
        for (member_id, client_id, kind, day), p in sorted(taken.items(), key=lambda item: item[0])
        if member_id in existing
    ]
    if params:
        db.connection().execute(prepared(db, "data_access_flush", _access_upsert), params)
    return len(params)


def install(database: Database) -> AccessCounts:
    """Buffer the access counts of the units of work of ``database`` (``create_app``)."""
    return AccessCounts().attach(database)


def counts_of(db: Session) -> AccessCounts | None:
    found = db.info.get(_KEY)
    return found if isinstance(found, AccessCounts) else None


def counts_of_database(database: Database) -> AccessCounts:
    """The ``AccessCounts`` installed on ``database`` (``LookupError`` if none)."""
    found = database.session_info.get(_KEY)
    if not isinstance(found, AccessCounts):
        raise LookupError("no access counts installed on this database")
    return found


def write_pending(db: Session) -> int:
    """Before reading or purging the access log: write this application's pending counts in ``db``'s
    transaction, so that what the member reads includes what this node counted a moment ago."""
    counts = counts_of(db)
    return counts.write(db) if counts is not None else 0


def register_tasks(runner: Runner, database: Database) -> None:
    """Flush every ``FLUSH_SECONDS`` on every node, and once more when the node stops."""
    try:
        found = counts_of_database(database)
    except LookupError:
        return

    async def flush() -> None:
        if found.pending():
            await database.run(lambda db: found.write(db))

    async def last_flush() -> None:
        try:
            await asyncio.to_thread(found.flush, database)
        except Exception:
            log.exception("Compteurs d'accès non écrits à l'arrêt / access counts not written at stop")

    runner.add(Task("access-log", flush, every=FLUSH_SECONDS, leader_only=False))
    runner.on_stop(last_flush)


def record_session_client(db: Session, sid: str, client_id: str, member_id: int) -> None:
    now = utcnow()
    db.connection().execute(  # Core: no ORM layer on the token path (rows.py)
        prepared(db, "session_client", _session_client_upsert),
        {"sid": sid, "client_id": client_id, "member_id": member_id, "first_at": now, "last_at": now},
    )


def count_access(db: Session, settings: Settings, member_id: int, client_id: str, kind: str, scopes: str) -> None:
    """Count one access; days are Portail's local days (setting ``timezone``), as members read them."""
    now = utcnow()
    key: Key = (member_id, client_id, kind, now.astimezone(ZoneInfo(settings.timezone)).date())
    counts = counts_of(db)
    if counts is not None:
        counts.add(key, now, scopes[:1000])
        return
    _write(db, {key: Pending(1, now, now, scopes[:1000])})
