"""Account events for the tools: Security Event Tokens (RFC 8417) pushed to each tool (RFC 8935).

When an account is purged, every tool that knew the member receives a SET carrying the RISC
``account-purged`` event (OpenID RISC Profile §2.7) about the subject *that tool* knows (pairwise or
public ``sub``, in the ``iss_sub`` format of RFC 9493 §3.2.5)::

    header  {"typ": "secevent+jwt", "alg": "RS256", "kid": …}            RFC 8417 §2.3
    claims  {"iss": issuer, "aud": client_id, "iat": …, "jti": …,           RFC 8417 §2.2
             "events": {ACCOUNT_PURGED: {"subject": {"format": "iss_sub", "iss": issuer, "sub": …}}}}

Delivery is RFC 8935 push: ``POST`` of the compact JWT with ``Content-Type: application/secevent+jwt``;
the tool acknowledges with ``202 Accepted`` (any 2xx is taken as received). Every SET is stored as an
``AccountEventDelivery`` (the shared outbox, ``portail.outbox``: leased, retried) and sent by the
background jobs, never on a member's request; a failure,
a timeout or an error answer is retried with exponential backoff up to ``account_event_max_attempts``
times, then marked failed. Endpoints are hoster-supplied, so every request goes through the
outbound guard (``portail.outbound``: https only unless
``allow_http_instances``, no credentials or fragment, public addresses only unless
``allow_private_addresses``, connection pinned to the checked address); redirects are not followed
and at most 4 KiB of an answer is read.
The signed token is emptied once the delivery is settled. The contract for the tools is
``docs/account-events.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session, col, select

from portail import metrics, outbound, outbox
from portail.config import Settings
from portail.consent.models import AccountEventDelivery
from portail.db import Database, database_clock, utcnow

log = logging.getLogger("portail.consent.events")

ACCOUNT_PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
SET_TYP = "secevent+jwt"
CONTENT_TYPE = "application/secevent+jwt"
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 6 * 3600
CONCURRENCY = 10
BATCH = 50
MAX_BODY = 4096

Signer = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Recipient:
    """A tool to tell: its client id, its receiver endpoint, and the ``sub`` it knows the member by."""

    client_id: str
    uri: str
    sub: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""


def claims(issuer: str, recipient: Recipient, event_type: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "iss": issuer,
        "aud": recipient.client_id,
        "iat": int(now.timestamp()),
        "jti": secrets.token_urlsafe(24),
        "events": {event_type: {"subject": {"format": "iss_sub", "iss": issuer, "sub": recipient.sub}}},
    }


def schedule(
    db: Session,
    settings: Settings,
    recipients: list[Recipient],
    sign: Signer,
    *,
    event_type: str = ACCOUNT_PURGED,
    reference: str = "",
) -> int:
    """Sign one SET per recipient and queue its delivery (in the caller's transaction)."""
    now, due = utcnow(), database_clock(db)  # due at once by the clock claims are read with
    for recipient in recipients:
        payload = claims(settings.issuer, recipient, event_type, now)
        db.add(
            AccountEventDelivery(
                jti=payload["jti"],
                client_id=recipient.client_id,
                uri=recipient.uri,
                event_type=event_type,
                deletion_reference=reference,
                token=sign(payload),
                next_attempt_at=due,
            )
        )
    db.flush()
    return len(recipients)


def uri_allowed(uri: str, settings: Settings) -> bool:
    """The form of a receiver endpoint: absolute https (http when allowed), no credentials or fragment."""
    try:
        outbound.check_syntax(uri, settings)
    except outbound.Refused:
        return False
    return True


async def refusal(uri: str, settings: Settings) -> str:
    """Why ``uri`` may not be contacted (the outbound guard, ``portail.outbound``), or an empty string."""
    try:
        await outbound.check_url(uri, settings)
    except outbound.Refused as exc:
        return f"endpoint refused ({exc.code})"
    return ""


def policy(settings: Settings) -> outbox.Policy:
    """How account events retry (``portail.outbox``): 30 s doubled up to 6 h, ``account_event_max_attempts``
    in all; the lease outlasts one attempt's timeout."""
    return outbox.Policy(
        first_backoff=BACKOFF_BASE_SECONDS,
        max_backoff=BACKOFF_MAX_SECONDS,
        max_attempts=settings.account_event_max_attempts,
        lease=dt.timedelta(seconds=settings.outbound_timeout_seconds * 2 + 30),
    )


def _claim_due(db: Session, now: dt.datetime | None, lease: dt.timedelta) -> list[tuple[int, str, str]]:
    """Take due deliveries for this worker: pushing ``next_attempt_at`` past the lease hides them from others."""
    return [(row.id or 0, row.uri, row.token) for row in outbox.claim_due(db, AccountEventDelivery, lease, BATCH, now)]


def _record(db: Session, delivery_id: int, outcome: Outcome, rules: outbox.Policy, now: dt.datetime | None) -> str:
    """Write an attempt's outcome; a settled delivery's signed token is emptied."""
    attempt = outbox.Attempt(outcome.ok, outcome.status_code, outcome.error)
    row = outbox.record(db, AccountEventDelivery, delivery_id, attempt, rules, now)
    if row is None:
        return "gone"
    if row.status in ("sent", "failed"):
        row.token = ""
        db.add(row)
    return row.status


async def post(http: httpx.AsyncClient, uri: str, token: str, settings: Settings) -> Outcome:
    """One RFC 8935 push; never raises."""
    refused = await refusal(uri, settings)
    if refused:
        return Outcome(False, None, refused)
    try:
        async with asyncio.timeout(settings.outbound_timeout_seconds * 2):
            async with http.stream(
                "POST",
                uri,
                content=token.encode(),
                headers={"Content-Type": CONTENT_TYPE, "Accept": "application/json"},
            ) as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY:
                        break
    except outbound.Refused as exc:  # the address changed since the check (DNS rebinding)
        return Outcome(False, None, f"endpoint refused ({exc.code})")
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, body[:300].decode("utf-8", "replace"))


async def deliver_due(
    database: Database, settings: Settings, *, now: dt.datetime | None = None, http: httpx.AsyncClient | None = None
) -> dict[str, int]:
    """Send every due delivery once (concurrently, bounded); returns how many ended in each state."""
    rules = policy(settings)
    taken = await database.run(_claim_due, now, rules.lease)  # None: on the database's clock
    counts: dict[str, int] = {}
    if not taken:
        return counts
    owns = http is None
    client = http or outbound.client(settings)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(delivery_id: int, uri: str, token: str) -> None:
        async with gate:
            outcome = await post(client, uri, token, settings)
        state = await database.run(_record, delivery_id, outcome, rules, now)
        counts[state] = counts.get(state, 0) + 1
        metrics.ACCOUNT_EVENT_DELIVERIES.labels(state).inc()
        if not outcome.ok:
            log.warning("account event %s to %s: %s", delivery_id, urlsplit(uri).netloc, outcome.error[:120])

    try:
        await asyncio.gather(*(one(*item) for item in taken))
    finally:
        if owns:
            await client.aclose()
    return counts


def deliveries(db: Session, *, reference: str | None = None, limit: int = 200) -> list[AccountEventDelivery]:
    """Recorded deliveries, newest first (for the privacy officer), optionally of one deletion."""
    query = select(AccountEventDelivery)
    if reference is not None:
        query = query.where(AccountEventDelivery.deletion_reference == reference)
    return list(db.exec(query.order_by(col(AccountEventDelivery.id).desc()).limit(limit)))


def unsettled(db: Session) -> int:
    """Deliveries still waiting to be sent or retried."""
    return outbox.unsettled(db, AccountEventDelivery)
