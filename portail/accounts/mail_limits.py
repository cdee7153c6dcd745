"""Limits on the mail a stranger can make Portail send: per target address and per client address.

Every request that may mail an address it does not prove to own — a password reset, a sign-up
(whether the address is new or already has an account), a re-sent verification, a corrected or
changed address, an organization invitation — is counted once for the target address and once for
the client's IP address, before Portail looks the address up, so that the counts (and the answers)
are the same whether an account exists or not. Within one window of ``mail_limit_window_minutes``:

- more than ``mail_limit_per_address`` requests for one address: no further mail goes to it; the
  page says what it always says (``Verdict.address_limited``);
- more than ``mail_limit_per_ip`` requests from one client address: the request is refused with
  a 429 and the minutes to wait (``Verdict.retry_after``).

A limit set to 0 is off. Counters are shared by every worker process: Redis keys (``INCR`` +
``EXPIRE``) when ``redis_url`` is set, else rows of the login throttle's table (``login_throttle``,
keys ``mail-to:<window>:<SHA-256 of the address>`` and ``mail-ip:<window>:<ip>``) bumped by one atomic
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete

from portail.accounts.members import AccountError, email_key, normalize_email
from portail.accounts.models import LoginThrottle
from portail.config import Settings
from portail.db import Database, utcnow

PREFIX = "mail-"


@dataclass(frozen=True)
class Verdict:
    """What the counters allow: send (both false), stay silent for this address, or refuse (429)."""

    address_limited: bool = False
    retry_after: int = 0  # seconds; > 0 when the client address is over its limit

    @property
    def send(self) -> bool:
        return not self.address_limited and not self.retry_after

    @property
    def retry_minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


def address_key(address: str) -> str:
    """The counter key of a target address: a digest of its normalized form, whatever the spelling.

    A digest, not the address: counters outlive an account's deletion (up to two windows), and
    Portail keeps no personal information of a deleted member."""
    try:
        normalized = email_key(normalize_email(address))
    except AccountError:
        normalized = address.strip().casefold()[:320]
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


def _bump(db: Session, keys: list[str], horizon: dt.datetime) -> list[int]:
    """Add one to each key; returns the new counts. A key's first count sweeps expired windows."""
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    totals = []
    for key in keys:
        upsert = (
            insert(LoginThrottle)
            .values(key=key, failures=1, last_failure_at=now)
            .on_conflict_do_update(index_elements=["key"], set_={"failures": col(LoginThrottle.failures) + 1})
            .returning(col(LoginThrottle.failures))
        )
        totals.append(int(db.execute(upsert).scalar_one()))
    if 1 in totals:
        db.execute(
            delete(LoginThrottle).where(
                col(LoginThrottle.key).startswith(PREFIX), col(LoginThrottle.last_failure_at) < horizon
            )
        )
    return totals


class MailLimiter:
    """The counters of ``create_app`` (``app.state.mail_limiter``), shared by every process."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._redis: Any = None
        self.clock: Callable[[], float] = time.time

    async def check(self, address: str, ip_address: str) -> Verdict:
        """Count one request to mail ``address`` from ``ip_address`` and say what is allowed."""
        settings = self.settings
        if not settings.mail_limit_per_address and not settings.mail_limit_per_ip:
            return Verdict()
        span = max(1, settings.mail_limit_window_minutes) * 60
        now = self.clock()
        window = int(now // span)
        keys = [f"{PREFIX}to:{window}:{address_key(address)[:360]}", f"{PREFIX}ip:{window}:{ip_address[:64]}"]
        if settings.redis_url:
            to_count, ip_count = await self._bump_redis(keys, span)
        else:
            horizon = utcnow() - dt.timedelta(seconds=2 * span)
            to_count, ip_count = await self.db.run(_bump, keys, horizon)
        if settings.mail_limit_per_ip and ip_count > settings.mail_limit_per_ip:
            return Verdict(retry_after=max(1, int((window + 1) * span - now) + 1))
        return Verdict(
            address_limited=bool(settings.mail_limit_per_address) and to_count > settings.mail_limit_per_address
        )

    async def _bump_redis(self, keys: list[str], span: int) -> tuple[int, int]:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(str(self.settings.redis_url))
        pipe = self._redis.pipeline()
        for key in keys:
            pipe.incr(f"portail:{key}")
            pipe.expire(f"portail:{key}", span * 2)
        results = await pipe.execute()
        return int(results[0]), int(results[2])

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
