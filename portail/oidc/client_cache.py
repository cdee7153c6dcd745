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
    return int(value) if value is not None else None


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
