"""OpenID Connect Back-Channel Logout 1.0: tell every tool of a login session that it ended.

- §2.5/§2.7 (when): when a login session ends (the ``on_session_end`` hook ``install`` puts on the
  application's ``AccountExtensions``), one
  ``BackchannelDelivery`` row is created, *in the same transaction*, for each client that received
  tokens in that session (``SessionClient``) and registered a ``backchannel_logout_uri``. A consent
  withdrawal does the same for one client and every live session of the member
  (``logout_member_from_client``), and a client withdrawn by its operator (an instance suspended or
  retired) for every live session that used it (``logout_client``).
- §2.4 (what): the Logout Token is built at send time (so its ``exp`` of about two minutes is counted
  from the attempt, not from the logout): a JWT with header ``typ: logout+jwt``, signed RS256 with
  the provider's keys, claims ``iss aud iat exp jti events sid sub`` and never ``nonce``.
  Synapse needs ``sid``, Nextcloud needs ``exp``; both are always present (``sid`` is omitted only
  for a withdrawal without any live session, and only for clients not requiring it).
- §2.5 (how): ``POST`` ``application/x-www-form-urlencoded`` ``logout_token=…`` with an explicit
  timeout and no redirect followed. 2xx is success; other answers and network errors are retried
  with exponential backoff, up to ``MAX_ATTEMPTS``; a 4xx other than 408/429 fails at once (the
  spec's 400 means the RP refused the token, 501 that it does not support logout).
- Never make the member wait: rows are sent by ``BackchannelSender``, a task of the background
  runner (``portail.background``): the leading process polls for due rows every few seconds, and
  the process whose commit created rows is woken at once (``Setup.wake``). A row is *claimed*
  atomically by pushing its ``next_attempt_at`` forward by a lease
  (``UPDATE … WHERE id=? AND status IN (pending, retrying) AND next_attempt_at <= now``), so only one
  process sends it, and a crashed sender's row becomes due again when the lease runs out.
- Expiry: a session that expires while nobody uses it is ended by the accounts' sweep
  (``accounts/expiry.py``), whose session-end hook queues its deliveries like any other end.
- Addresses: a client whose endpoint an administrator did not set — registered dynamically
  (RFC 7591), or provisioned for a hoster's node (the federation says which, ``guard_clients_found_by``)
  — is sent to through the outbound guard (``portail.outbound``): https only unless
  ``allow_http_instances``, public addresses only unless ``allow_private_addresses``, and the
  connection goes to the very address that was checked (no DNS rebinding). Administrators' clients
  (``portail clients create``, ``instances.toml``) may use loopback and private addresses (tests do).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete
from sqlmodel import Session, col, select

from portail import metrics, outbound, outbox
from portail.accounts.extensions import AccountExtensions
from portail.accounts.models import LoginSession, Member
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database, after_commit, database_clock, utcnow
from portail.oidc import assertions, keys, subjects
from portail.oidc.models import BackchannelDelivery, OAuthClient, SessionClient

log = logging.getLogger("portail.oidc.backchannel")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_SECONDS = 120
MAX_ATTEMPTS = 8
BACKOFF_FIRST_SECONDS = 10
BACKOFF_MAX_SECONDS = 3600
LEASE_SECONDS = 60  # the default of backchannel_lease_seconds (the sender's claims use the setting)
SWEEP_SECONDS = 60.0  # how often used client assertions are purged
BATCH = 50
BATCH_IN = 500  # ids per IN (...) list
CONCURRENCY = 10
USER_AGENT = "Portail-En-commun/backchannel-logout"

# ---------------------------------------------------------------- creating deliveries

_KEY = "portail.oidc.backchannel"
_WAKE_KEY = "portail.backchannel.wake"
GuardFinder = Callable[[Session, set[str]], set[str]]


def _nothing() -> None:
    return None


@dataclass
class Setup:
    """What the back-channel code needs from its application, carried by every unit of work of the
    application's database (``Session.info``, like ``accounts.extensions``): no module-level state,
    and two applications in one process never see each other's."""

    secret_key: str = ""  # the key pairwise subjects derive from
    guard_finders: list[GuardFinder] = field(default_factory=list)  # see ``guard_clients_found_by``
    wake: Callable[[], None] = _nothing  # wakes this process's sender (the background runner)

    def guard_clients_found_by(self, finder: GuardFinder) -> None:
        """Register a function naming, among some client ids, those whose endpoints come from outside
        (a higher package, e.g. the federation, knows which clients a hoster configured)."""
        if finder not in self.guard_finders:
            self.guard_finders.append(finder)


def install(database: Database, extensions: AccountExtensions, settings: Settings) -> Setup:
    """Queue deliveries when sessions end, for the units of work of ``database`` (``create_app`` and
    the commands' ``open_database``)."""
    setup = Setup(secret_key=settings.secret_key)
    database.session_info[_KEY] = setup
    extensions.on_session_end(_queue_for_ended_sessions)
    return setup


def setup_of(db: Session) -> Setup:
    """The back-channel setup of the application whose unit of work ``db`` is (empty if none)."""
    found = db.info.get(_KEY)
    return found if isinstance(found, Setup) else Setup()


def _queue(db: Session, client: OAuthClient, member: Member, sid: str, due: dt.datetime) -> BackchannelDelivery | None:
    """One delivery, due at ``due``: the database's clock, read once by the caller for all its rows
    (``database_clock``: the clock claims are read with)."""
    if not client.backchannel_logout_uri or not client.active:
        return None
    if not sid and client.backchannel_logout_session_required:
        return None
    setup = setup_of(db)
    row = BackchannelDelivery(
        client_id=client.client_id,
        sid=sid,
        subject=subjects.subject_for(db, setup.secret_key, member, client),
        uri=client.backchannel_logout_uri,
        next_attempt_at=due,
    )
    db.add(row)
    if not db.info.get(_WAKE_KEY):  # wake the sender once the rows are committed (not if rolled back)
        db.info[_WAKE_KEY] = True
        after_commit(setup.wake)
    return row


def _clients(db: Session, client_ids: set[str]) -> dict[str, OAuthClient]:
    if not client_ids:
        return {}
    rows = db.exec(select(OAuthClient).where(col(OAuthClient.client_id).in_(sorted(client_ids))))
    return {c.client_id: c for c in rows}


def _queue_for_ended_sessions(db: Session, ended: list[LoginSession]) -> None:
    queue_for_ended_sessions(db, ended)


def queue_for_ended_sessions(db: Session, ended: list[LoginSession]) -> list[BackchannelDelivery]:
    """The ``on_session_end`` hook: one delivery per (ended session, client with a back-channel URI)."""
    by_sid = {row.sid: row for row in ended}
    links = list(db.exec(select(SessionClient).where(col(SessionClient.sid).in_(sorted(by_sid)))))
    if not links:  # no tool to tell (and no clock to read)
        db.flush()
        return []
    clients = _clients(db, {link.client_id for link in links})
    members: dict[int, Member | None] = {}
    created = []
    due = database_clock(db)
    for link in links:
        client = clients.get(link.client_id)
        if client is None:
            continue
        if link.member_id not in members:
            members[link.member_id] = db.get(Member, link.member_id)
        member = members[link.member_id]
        if member is None:
            continue
        row = _queue(db, client, member, link.sid, due)
        if row is not None:
            created.append(row)
    db.flush()
    return created


def logout_member_from_client(db: Session, member_id: int, client_id: str) -> list[BackchannelDelivery]:
    """Log a member out of one client in every live session (consent withdrawal, client revocation).

    The ``SessionClient`` links are removed, so the session's own end later does not repeat it.
    Without a live session, a ``sub``-only token is sent to clients that do not require ``sid``.
    """
    member = db.get(Member, member_id)
    clients = _clients(db, {client_id})
    client = clients.get(client_id)
    if member is None or client is None:
        return []
    links = list(
        db.exec(
            select(SessionClient, LoginSession)
            .join(LoginSession, col(LoginSession.sid) == col(SessionClient.sid))
            .where(SessionClient.member_id == member_id, SessionClient.client_id == client_id)
        )
    )
    created = []
    due = database_clock(db)
    for link, login in links:
        if login.ended_at is None:
            row = _queue(db, client, member, link.sid, due)
            if row is not None:
                created.append(row)
        db.delete(link)
    if not created:
        row = _queue(db, client, member, "", due)
        if row is not None:
            created.append(row)
    db.flush()
    return created


def logout_client(db: Session, client_id: str) -> list[BackchannelDelivery]:
    """Log every live session out of one client (the client is about to be disabled: call this first,
    since a disabled client is sent nothing). The ``SessionClient`` links are removed. Members are
    loaded in batches and links deleted in one statement: a central tool may have thousands."""
    client = _clients(db, {client_id}).get(client_id)
    if client is None:
        return []
    live = list(
        db.exec(
            select(SessionClient.sid, SessionClient.member_id)
            .join(LoginSession, col(LoginSession.sid) == col(SessionClient.sid))
            .where(SessionClient.client_id == client_id, col(LoginSession.ended_at).is_(None))
        )
    )
    created = []
    due = database_clock(db)
    with db.no_autoflush:
        wanted = sorted({member_id for _sid, member_id in live})
        members: dict[int, Member] = {}
        for start in range(0, len(wanted), BATCH_IN):
            chunk = wanted[start : start + BATCH_IN]
            members.update({m.id or 0: m for m in db.exec(select(Member).where(col(Member.id).in_(chunk)))})
        for sid, member_id in live:
            member = members.get(member_id)
            row = _queue(db, client, member, sid, due) if member is not None else None
            if row is not None:
                created.append(row)
    db.execute(delete(SessionClient).where(col(SessionClient.client_id) == client_id))  # type: ignore[call-overload]
    db.flush()
    return created


# ---------------------------------------------------------------- the logout token


def logout_token(
    ring: keys.KeyRing, settings: Settings, delivery: BackchannelDelivery, now: dt.datetime | None = None
) -> str:
    """§2.4: the signed Logout Token for one delivery (``typ: logout+jwt``; never ``nonce``)."""
    issued = int((now or utcnow()).timestamp())
    payload: dict[str, object] = {
        "iss": settings.issuer,
        "aud": delivery.client_id,
        "iat": issued,
        "exp": issued + TOKEN_SECONDS,
        "jti": secrets.token_urlsafe(18),
        "events": {EVENT: {}},
        "sub": delivery.subject,
    }
    if delivery.sid:
        payload["sid"] = delivery.sid
    return ring.sign(payload, typ="logout+jwt", alg="RS256")


# ---------------------------------------------------------------- claiming and recording


POLICY = outbox.Policy(
    first_backoff=BACKOFF_FIRST_SECONDS,
    max_backoff=BACKOFF_MAX_SECONDS,
    max_attempts=MAX_ATTEMPTS,
    lease=dt.timedelta(seconds=LEASE_SECONDS),
)


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next attempt after ``attempts`` failures: 10 s, 20 s, 40 s … at most an hour."""
    return POLICY.backoff(attempts)


def claim_due(
    db: Session, now: dt.datetime | None = None, limit: int = BATCH, lease: dt.timedelta = POLICY.lease
) -> list[BackchannelDelivery]:
    """Atomically take the due rows this process will send (``portail.outbox``: a lease, by default
    ``LEASE_SECONDS``, on the database's clock unless ``now`` is given)."""
    return outbox.claim_due(db, BackchannelDelivery, lease, limit, now)


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    ok: bool
    status_code: int | None = None
    error: str = ""
    permanent: bool = False


def record(db: Session, outcome: Outcome, now: dt.datetime | None = None) -> BackchannelDelivery | None:
    """Store the result of one attempt: sent, retrying (with backoff) or failed."""
    attempt = outbox.Attempt(outcome.ok, outcome.status_code, outcome.error, outcome.permanent)
    return outbox.record(db, BackchannelDelivery, outcome.delivery_id, attempt, POLICY, now)


# ---------------------------------------------------------------- sending


def _syntax_problem(uri: str) -> str:
    """An error message when the URI is not an absolute http(s) URL, else an empty string."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "invalid backchannel_logout_uri"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "invalid backchannel_logout_uri"
    return ""


async def send_one(
    ring: keys.KeyRing, settings: Settings, http: httpx.AsyncClient, delivery: BackchannelDelivery, guarded: bool
) -> Outcome:
    """One attempt. ``http`` must be a guarded client (``outbound.client``) when ``guarded``: the
    endpoint was supplied by a hoster or a registering tool, so the address is checked and the
    connection pinned to it (a second DNS answer cannot send the token to an internal address)."""
    row_id = delivery.id or 0
    invalid = _syntax_problem(delivery.uri)
    if invalid:
        return Outcome(row_id, False, error=invalid, permanent=True)
    try:
        token = logout_token(ring, settings, delivery)
        response = await http.post(
            delivery.uri,
            data={"logout_token": token},
            headers={"Accept": "application/json", "Cache-Control": "no-store"},
            follow_redirects=False,
        )
    except outbound.Refused as exc:  # the outbound guard (guarded clients only); str(exc) starts with the code
        error = f"refused by the outbound guard: {exc}"[:500]
        return Outcome(row_id, False, error=error, permanent=exc.code != "dns")  # a DNS failure may pass
    except httpx.HTTPError as exc:
        return Outcome(row_id, False, error=f"{type(exc).__name__}: {exc}"[:500])
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(row_id, True, code)
    permanent = 400 <= code < 500 and code not in (408, 429)
    body = response.text[:200].replace("\n", " ") if response.content else ""
    return Outcome(row_id, False, code, f"HTTP {code} {body}".strip(), permanent)


def guarded_clients(db: Session, client_ids: list[str]) -> set[str]:
    """The clients whose endpoints an administrator did not set: registered dynamically (RFC 7591),
    or named by a registered finder (the federation's hoster-provisioned clients)."""
    ids = set(client_ids)
    found = {c.client_id for c in _clients(db, ids).values() if c.registered_dynamically}
    for finder in setup_of(db).guard_finders:
        found |= finder(db, ids) & ids
    return found


async def deliver_due(
    db: Database,
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    guarded_http: httpx.AsyncClient | None = None,
    limit: int = BATCH,
) -> int:
    """Claim the due deliveries, send them concurrently and record each outcome; returns how many.

    Deliveries to guarded clients go through ``guarded_http`` (``outbound.client``; one is made for
    this call when not given), the others through ``http`` (administrators' tools, loopback allowed)."""
    claimed = await db.run(claim_due, None, limit, dt.timedelta(seconds=settings.backchannel_lease_seconds))
    if not claimed:
        return 0
    guarded = await db.run(guarded_clients, [row.client_id for row in claimed])
    ring = keys.ring_in(db)
    gate = asyncio.Semaphore(CONCURRENCY)
    pinned = guarded_http or (guarded_client(settings) if guarded else None)

    async def attempt(row: BackchannelDelivery) -> None:
        is_guarded = row.client_id in guarded
        client = pinned if is_guarded and pinned is not None else http
        async with gate:
            outcome = await send_one(ring, settings, client, row, is_guarded)
        if not outcome.ok:
            log.info("back-channel logout to %s failed: %s", row.client_id, outcome.error)
        stored = await db.run(record, outcome)
        metrics.BACKCHANNEL_DELIVERIES.labels(stored.status if stored else "gone").inc()

    try:
        await asyncio.gather(*(attempt(row) for row in claimed))
    finally:
        if pinned is not None and guarded_http is None:
            await pinned.aclose()
    return len(claimed)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The outbound client of the sender: explicit timeout, no redirects, no environment proxies."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.outbound_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


def guarded_client(settings: Settings) -> httpx.AsyncClient:
    """The outbound client for guarded clients: the outbound guard's pinned transport
    (``portail.outbound``), explicit timeout, no redirects, no environment proxies."""
    http = outbound.client(settings)
    http.headers["User-Agent"] = USER_AGENT
    return http


class BackchannelSender:
    """The back-channel task of the background runner (``register_tasks``): one pass sends every
    due delivery, batch after batch; it keeps its two HTTP clients (plain and guarded) between passes."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self._guarded: httpx.AsyncClient | None = None

    async def run(self) -> int:
        if self._http is None or self._guarded is None:
            self._http, self._guarded = http_client(self.settings), guarded_client(self.settings)
        sent = 0
        while True:
            count = await deliver_due(self.db, self.settings, self._http, guarded_http=self._guarded)
            sent += count
            if count < BATCH:
                return sent

    async def aclose(self) -> None:
        for http in (self._http, self._guarded):
            if http is not None:
                await http.aclose()
        self._http = self._guarded = None


async def _purge_assertions(db: Database) -> None:
    await db.run(assertions.purge_expired, utcnow())


def register_tasks(runner: Runner, setup: Setup, db: Database, settings: Settings) -> BackchannelSender:
    """The sender polls every ``backchannel_poll_seconds`` on the leader and runs at once, in the
    process that committed them, when deliveries are created (``Setup.wake``); used client
    assertions' ``jti`` are purged every minute."""
    sender = BackchannelSender(db, settings)
    runner.add(Task("backchannel", sender.run, every=settings.backchannel_poll_seconds, first_delay=0.0))
    runner.add(Task("assertion-purge", lambda: _purge_assertions(db), every=SWEEP_SECONDS))
    runner.on_stop(sender.aclose)
    setup.wake = runner.waker("backchannel")
    return sender


# ---------------------------------------------------------------- the administrators' view


@dataclass(frozen=True)
class DeliveryCounts:
    sent: int = 0
    pending: int = 0
    retrying: int = 0
    failed: int = 0


def counts_by_client(db: Session) -> dict[str, DeliveryCounts]:
    from sqlalchemy import func

    rows = db.exec(
        select(BackchannelDelivery.client_id, BackchannelDelivery.status, func.count()).group_by(
            col(BackchannelDelivery.client_id), col(BackchannelDelivery.status)
        )
    ).all()
    totals: dict[str, dict[str, int]] = {}
    for client_id, status, count in rows:
        totals.setdefault(client_id, {})[status] = int(count)
    return {
        cid: DeliveryCounts(**{k: v for k, v in t.items() if k in DeliveryCounts.__dataclass_fields__})
        for cid, t in totals.items()
    }


def recent_deliveries(db: Session, client_id: str | None = None, limit: int = 50) -> list[BackchannelDelivery]:
    query = select(BackchannelDelivery).order_by(col(BackchannelDelivery.id).desc()).limit(limit)
    if client_id is not None:
        query = query.where(BackchannelDelivery.client_id == client_id)
    return list(db.exec(query))
