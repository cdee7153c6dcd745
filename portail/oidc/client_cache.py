"""Clients cached in process, correct across processes.

Every token, introspection, revocation and userinfo request needs its client's row (secret hash,
scopes, grant types, whether it is disabled or its tokens revoked). The rows change rarely, so each
process keeps them in memory, per database engine, and asks the database one cheap question per
request instead: the ``version`` of the one ``oauth_client_version`` row, which database triggers
bump on every INSERT, UPDATE or DELETE of ``oauth_client`` (and TRUNCATE on PostgreSQL), whatever
code or process made the change (migration ``oidc_0003``). When it moved, the cache is dropped, so a
disabled, deleted or revoked client is seen at once by every process.

Why it is correct: a client is stored under the version the request read *before* reading the
client, and served only to requests that read that same version. A change commits its client row
and its version bump together, so what is stored under version v contains every change up to v.
Without the version row (a database not migrated, or the row deleted), nothing is cached.

**Taken on trust, confirmed later** (``PortailServer(tentative=True)``: refresh and introspection
requests authenticated with a secret): the client comes from the cache *without* reading the version
first, and the version it was stored under is noted (``note_used``). The request's next statement
reads the version anyway (the refresh-token lookup and the access-token check carry it as a column:
``note_seen``), and before the answer leaves the unit of work, ``confirm`` compares the two (reading
the version only if no statement did). If they differ, ``StaleClient`` is raised: the unit of work
rolls back and the request runs again the ordinary way. So no answer, and no write that survives,
ever rests on a client that changed; what is saved is one statement (on PostgreSQL, a round trip)
per refresh and introspection.

The cached ``OAuthClient`` objects are shared between threads and belong to no session: read them,
never change them (the admin paths load their own rows through ``clients.get_client``).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portail.oidc.models import OAuthClient, OAuthClientVersion

MAX_CLIENTS = 10_000  # a federation has hundreds; past this, stop adding (never evict under a lock)

_client_table: Any = OAuthClient.__table__  # type: ignore[attr-defined]
_version_table: Any = OAuthClientVersion.__table__  # type: ignore[attr-defined]

# Built once: building a statement costs more than running it on SQLite.
VERSION = sa.select(_version_table.c.version).where(_version_table.c.id == 1).scalar_subquery()
_READ_VERSION = sa.select(VERSION)
_BY_CLIENT_ID = sa.select(_client_table).where(_client_table.c.client_id == bindparam("client_id"))


class ClientCache:
    """The clients one process read under one version of ``oauth_client_version``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._clients: dict[str, OAuthClient] = {}

    def cached(self, client_id: str) -> tuple[OAuthClient, int] | None:
        """The cached client and the version it was stored under, without asking the database."""
        with self._lock:
            found = self._clients.get(client_id)
            return (found, self._version) if found is not None and self._version is not None else None

    def lookup(self, version: int | None, client_id: str) -> OAuthClient | None:
        if version is None:
            return None
        with self._lock:
            return self._clients.get(client_id) if version == self._version else None

    def store(self, version: int | None, client: OAuthClient) -> None:
        if version is None:
            return
        with self._lock:
            if version != self._version:
                self._version, self._clients = version, {}
            if len(self._clients) < MAX_CLIENTS:
                self._clients[client.client_id] = client


_caches: weakref.WeakKeyDictionary[Engine, ClientCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache_of(db: Session) -> ClientCache:
    engine = db.get_bind()
    engine = engine.engine if not isinstance(engine, Engine) else engine
    cache = _caches.get(engine)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(engine, ClientCache())
    return cache


def current_version(db: Session) -> int | None:
    """The version of ``oauth_client_version`` (None without its row)."""
    value = db.connection().execute(_READ_VERSION).scalar()
    version = int(value) if value is not None else None
    note_seen(db, version)
    return version


def get(db: Session, client_id: str) -> OAuthClient | None:
    """The client ``client_id`` (or None): the version, then the cache or the row."""
    return get_at(db, client_id, current_version(db))


def get_at(db: Session, client_id: str, version: int | None) -> OAuthClient | None:
    """The client ``client_id`` (or None), from the cache when ``version`` (read by the caller in
    this transaction, before anything else about the client) is the cached one."""
    cache = _cache_of(db)
    found = cache.lookup(version, client_id)
    if found is not None:
        return found
    row = db.connection().execute(_BY_CLIENT_ID, {"client_id": client_id}).first()
    if row is None:
        return None
    client = OAuthClient(**row._mapping)
    cache.store(version, client)
    return client


# ---------------------------------------------------------------- taken on trust, confirmed later

_USED = "portail.clients_versions_used"
_SEEN = "portail.clients_version_seen"


class StaleClient(Exception):
    """A client taken from the cache on trust changed meanwhile: run the request again, strictly."""


def cached_on_trust(db: Session, client_id: str) -> OAuthClient | None:
    """The cached client without reading the version (``confirm`` must follow); None if not cached."""
    found = _cache_of(db).cached(client_id)
    if found is None:
        return None
    client, version = found
    db.info.setdefault(_USED, set()).add(version)
    return client


def note_seen(db: Session, version: int | None) -> None:
    """A statement of this unit of work read the clients' version (as a column of its row)."""
    db.info[_SEEN] = version


def confirm(db: Session) -> None:
    """Raise ``StaleClient`` if a client taken on trust in this unit of work is not the current one."""
    used: set[int] | None = db.info.pop(_USED, None)
    if not used:
        return
    seen = db.info[_SEEN] if _SEEN in db.info else current_version(db)
    if used != {seen}:
        raise StaleClient()
