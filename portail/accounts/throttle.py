"""Login throttling: a growing delay after repeated failures, per account and per client address.

Counters live in the database so that every worker process sees the same numbers. After
``login_failures_before_delay`` failures for an account (``login_ip_failures_before_delay`` for an
address), each further failure doubles the delay, capped at ``login_max_delay_seconds``. A success
clears the account counter. Unknown accounts are counted like known ones, so the answer never
reveals whether an address has an account.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, delete

from portail.accounts.models import LoginThrottle
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database, utcnow

WINDOW = dt.timedelta(hours=1)
PURGE_SECONDS = 3600.0


def _keys(email_key: str, ip_address: str) -> list[tuple[str, str]]:
    return [("account", f"account:{email_key[:380]}"), ("ip", f"ip:{ip_address[:64]}")]


def retry_after(db: Session, email_key: str, ip_address: str) -> int:
    """Seconds the caller must wait before trying again (0 when allowed)."""
    now = utcnow()
    wait = 0
    for _kind, key in _keys(email_key, ip_address):
        row = db.get(LoginThrottle, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            wait = max(wait, int((row.blocked_until - now).total_seconds()) + 1)
    return wait


def record_failure(db: Session, email_key: str, ip_address: str, settings: Settings) -> None:
    now = utcnow()
    for kind, key in _keys(email_key, ip_address):
        row = db.get(LoginThrottle, key)
        if row is None or now - row.last_failure_at > WINDOW:
            row = row or LoginThrottle(key=key)
            row.failures = 0
            row.blocked_until = None
        row.failures += 1
        row.last_failure_at = now
        threshold = (
            settings.login_failures_before_delay if kind == "account" else settings.login_ip_failures_before_delay
        )
        if row.failures >= threshold:
            delay = min(2 ** (row.failures - threshold + 1), settings.login_max_delay_seconds)
            row.blocked_until = now + dt.timedelta(seconds=delay)
        db.add(row)


def record_success(db: Session, email_key: str) -> None:
    """Clear the account's counter (one DELETE, no read: this runs on every successful login)."""
    db.exec(delete(LoginThrottle).where(col(LoginThrottle.key) == f"account:{email_key[:380]}"))


def purge_stale(db: Session, now: dt.datetime) -> int:
    """Forget counters that no longer count: last failure older than the window and no block running
    (``record_failure`` would start them from zero anyway). Without this every address that ever
    failed a login would stay in the table."""
    stale = (col(LoginThrottle.last_failure_at) < now - WINDOW) & (
        col(LoginThrottle.blocked_until).is_(None) | (col(LoginThrottle.blocked_until) < now)
    )
    result = db.exec(delete(LoginThrottle).where(stale))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


def register_tasks(runner: Runner, db: Database) -> None:
    """Stale counters are purged every hour (a task of the background runner)."""

    async def purge() -> None:
        await db.run(purge_stale, utcnow())

    runner.add(Task("login-throttle-purge", purge, every=PURGE_SECONDS))
