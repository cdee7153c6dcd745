"""Clients' public keys by reference: ``jwks_uri`` (RFC 7591 §2, OIDC Core §10.1.1) for
``private_key_jwt`` (RFC 7523 §3, OIDC Core §9). A client registers its keys by value (``jwks``,
stored on its row) or by reference (``jwks_uri``, fetched here; RFC 7591 §2: never both).

- **Fetched on the event loop, before the worker thread.** The token, introspection and revocation
  routes call ``prefetch`` with their request snapshot: when it carries a ``client_assertion`` whose
  (unverified) ``sub`` names an active ``private_key_jwt`` client with a ``jwks_uri``, the key set
  is taken from the cache or fetched, and handed to the worker thread as ``RemoteKeys``; there
  ``grants.PrivateKeyJWT.resolve_client_public_key`` only reads it, and authlib verifies the
  signature and every claim as for registered ``jwks``. Nothing in the thread waits on the network,
  so a slow or hostile ``jwks_uri`` never holds a database connection, a transaction or SQLite's
  writer lock (fetching from the thread would need a synchronous twin of the outbound guard, or a
  hop back to the loop while holding all of these). The unverified header and claims only choose
  what to fetch.
- **Addresses**: the rule of back-channel logout (``backchannel.guarded_clients``): a client
  registered dynamically or provisioned for a hoster's node is fetched through the outbound guard
  (``outbound.fetch`` with its pinned client: https, public addresses only, each redirect
  re-checked); an administrator's client (``portail clients create --jwks-uri``) may use loopback
  and private addresses. Either way at most ``MAX_BYTES`` and ``outbound_timeout_seconds``.
- **Cache**: per (client, ``jwks_uri``) in process (``RemoteKeySets``, one per application) for the
  answer's ``Cache-Control: max-age`` bounded to [``MIN_TTL``, ``MAX_TTL``] (``DEFAULT_TTL``
  without one). An assertion naming a ``kid`` the cached set lacks (the tool rotated its keys)
  refetches at once, but at most once per ``REFETCH_SECONDS`` per client (besides the fetch when
  the TTL runs out), and concurrent requests share one fetch: assertions with random ``kid`` values
  cannot make Portail hammer the tool. A failed fetch is remembered for ``REFETCH_SECONDS``; a
  failed refetch keeps the previous keys until they expire.
- **Failure** is 401 ``invalid_client`` with an ``error_description`` saying why (``The client's
  jwks_uri could not be fetched (address-private)``), never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import Session

from portail import outbound
from portail.config import Settings
from portail.db import Database
from portail.oidc import backchannel, clients
from portail.oidc.server import HttpInput

log = logging.getLogger("portail.oidc.client_keys")

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_TTL = 300.0
MIN_TTL = 60.0
MAX_TTL = 3600.0
REFETCH_SECONDS = 30.0
MAX_BYTES = 64 * 1024
MAX_ENTRIES = 2000
ACCEPT = "application/jwk-set+json, application/json;q=0.9"


class KeysUnavailable(Exception):
    """Why a ``jwks_uri`` gave no usable key set (ASCII: it becomes the ``error_description``)."""


@dataclass(frozen=True)
class Target:
    """A client whose keys are to be fetched, as the database describes it."""

    client_id: str
    jwks_uri: str
    guarded: bool


@dataclass(frozen=True)
class RemoteKeys:
    """What the worker thread receives: the key set at one client's ``jwks_uri``, or why there is none."""

    client_id: str
    jwks_uri: str
    jwks: dict[str, Any] | None
    error: str = ""


@dataclass(frozen=True)
class _Entry:
    jwks: dict[str, Any] | None
    kids: frozenset[str]
    error: str
    expires_at: float


# ---------------------------------------------------------------- fetching


def ttl_of(cache_control: str) -> float:
    """How long a key set may be kept: ``max-age`` within [MIN_TTL, MAX_TTL]; no-store/no-cache → MIN_TTL."""
    directives: dict[str, str] = {}
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return MIN_TTL
    max_age = directives.get("max-age", "")
    if max_age.isdigit():
        return min(max(float(max_age), MIN_TTL), MAX_TTL)
    return DEFAULT_TTL


def _plain_client(settings: Settings) -> httpx.AsyncClient:
    """For administrators' URLs: explicit timeout, no redirects by httpx, no environment proxies."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.outbound_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": outbound.USER_AGENT},
    )


async def fetch_key_set(settings: Settings, uri: str, *, guarded: bool) -> tuple[dict[str, Any], float]:
    """GET the JWK Set at ``uri``; returns it and how long it may be kept. Raises ``KeysUnavailable``."""
    if not guarded:  # an administrator set it; ``clients.check_uri`` allowed http on loopback only
        settings = settings.replace(allow_http_instances=True)
    http = outbound.client(settings) if guarded else _plain_client(settings)
    try:
        async with http:
            fetched = await outbound.fetch(settings, uri, accept=ACCEPT, max_bytes=MAX_BYTES, http=http)
    except outbound.Refused as exc:
        raise KeysUnavailable(f"The client's jwks_uri could not be fetched ({exc.code})") from exc
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:  # never a 500 for a tool's URL
        raise KeysUnavailable("The client's jwks_uri could not be fetched (invalid)") from exc
    if fetched.status != 200:
        raise KeysUnavailable(f"The client's jwks_uri answered HTTP {fetched.status}")
    try:
        data = json.loads(fetched.body)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
            raise ValueError("not a JWK Set")
        KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError, JoseError) as exc:
        raise KeysUnavailable("The client's jwks_uri did not answer a usable JWK Set") from exc
    return data, ttl_of(fetched.headers.get("cache-control", ""))


Fetcher = Callable[[Settings, str], Awaitable[tuple[dict[str, Any], float]]]


# ---------------------------------------------------------------- the cache


class RemoteKeySets:
    """The in-process cache of clients' key sets (one per application, on ``app.state.client_keys``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, fetcher: Fetcher | None = None) -> None:
        self.clock = clock
        self.fetcher = fetcher
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[_Entry]] = {}
        self._refetched_at: dict[tuple[str, str], float] = {}  # last refetch for an unknown kid

    async def keys(self, settings: Settings, target: Target, kid: str | None) -> RemoteKeys:
        """The key set for ``target``, fetched when absent or expired, or refetched (rate-limited) when
        it lacks ``kid``."""
        key = (target.client_id, target.jwks_uri)
        entry = self._entries.get(key)
        now = self.clock()
        if entry is None or now >= entry.expires_at or self._may_refetch(key, entry, kid, now):
            task = self._inflight.get(key)
            if task is None:
                task = asyncio.ensure_future(self._refresh(settings, target, entry))
                self._inflight[key] = task
                task.add_done_callback(lambda _done: self._inflight.pop(key, None))
            entry = await asyncio.shield(task)
        return RemoteKeys(target.client_id, target.jwks_uri, entry.jwks, entry.error)

    def _may_refetch(self, key: tuple[str, str], entry: _Entry, kid: str | None, now: float) -> bool:
        """A fresh key set lacks the asserted ``kid``: refetch, unless done less than REFETCH_SECONDS ago."""
        if entry.jwks is None or kid is None or kid in entry.kids:
            return False
        last = self._refetched_at.get(key)
        if last is not None and now - last < REFETCH_SECONDS:
            return False
        self._refetched_at[key] = now
        return True

    async def _refresh(self, settings: Settings, target: Target, previous: _Entry | None) -> _Entry:
        now = self.clock()
        try:
            if self.fetcher is not None:
                jwks, ttl = await self.fetcher(settings, target.jwks_uri)
            else:
                jwks, ttl = await fetch_key_set(settings, target.jwks_uri, guarded=target.guarded)
        except KeysUnavailable as exc:
            log.info("jwks_uri of client %s: %s (%s)", target.client_id, exc, exc.__cause__ or "")
            if previous is not None and previous.jwks is not None and now < previous.expires_at:
                entry = previous
            else:
                entry = _Entry(None, frozenset(), str(exc), now + REFETCH_SECONDS)
        else:
            kids = frozenset(str(k["kid"]) for k in jwks["keys"] if isinstance(k, dict) and "kid" in k)
            entry = _Entry(jwks, kids, "", now + ttl)
        key = (target.client_id, target.jwks_uri)
        if key not in self._entries and len(self._entries) >= MAX_ENTRIES:
            oldest = next(iter(self._entries))
            self._entries.pop(oldest)
            self._refetched_at.pop(oldest, None)
        self._entries[key] = entry
        return entry


# ---------------------------------------------------------------- before the worker thread


def asserted(inp: HttpInput) -> tuple[str, str | None] | None:
    """The client id (``sub``) and ``kid`` of the request's client assertion, unverified."""
    if inp.first("client_assertion_type") != JWT_BEARER:
        return None
    assertion = inp.first("client_assertion")
    if not assertion:
        return None
    try:
        compact = jws.extract_compact(assertion.encode())
        claims = json.loads(compact.payload)
        kid = compact.headers().get("kid")
    except (JoseError, ValueError, TypeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not 0 < len(sub) <= 100:
        return None
    return sub, kid if isinstance(kid, str) else None


def target_of(db: Session, client_id: str) -> Target | None:
    """The client to fetch keys for: active, ``private_key_jwt``, a ``jwks_uri`` and no ``jwks``."""
    client = clients.get_client(db, client_id)
    if client is None or not client.active or client.jwks or not client.jwks_uri:
        return None
    if client.token_endpoint_auth_method != "private_key_jwt":  # noqa: S105
        return None
    guarded = client_id in backchannel.guarded_clients(db, [client_id])
    return Target(client_id, client.jwks_uri, guarded)


async def prefetch(db: Database, settings: Settings, cache: RemoteKeySets, inp: HttpInput) -> RemoteKeys | None:
    """Called by the routes that authenticate clients, before ``db.run``: the asserted client's
    key set from its ``jwks_uri`` (``None`` when the request does not need one)."""
    found = asserted(inp)
    if found is None:
        return None
    target = await db.run(target_of, found[0])
    if target is None:
        return None
    return await cache.keys(settings, target, found[1])
