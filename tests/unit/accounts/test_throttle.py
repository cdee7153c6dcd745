"""Login throttling: a growing delay after repeated failures, cleared by a success."""

from __future__ import annotations

import datetime as dt

from portail.accounts import throttle
from portail.accounts.models import LoginThrottle
from portail.config import Settings
from portail.db import Database, utcnow


def _fail(db: Database, settings: Settings, times: int, key: str = "alice@example.org", ip: str = "192.0.2.1") -> None:
    for _ in range(times):
        db.call(throttle.record_failure, key, ip, settings)


def _blocked_for(db: Database, key: str) -> float:
    row = db.call(lambda s: s.get(LoginThrottle, key))
    if row is None or row.blocked_until is None:
        return 0.0
    return (row.blocked_until - utcnow()).total_seconds()


def test_no_delay_before_the_threshold(db: Database, unit_settings: Settings) -> None:
    _fail(db, unit_settings, unit_settings.login_failures_before_delay - 1)
    assert db.call(throttle.retry_after, "alice@example.org", "192.0.2.1") == 0


def test_each_further_failure_doubles_the_delay_up_to_the_cap(db: Database, unit_settings: Settings) -> None:
    settings = unit_settings.replace(login_failures_before_delay=3, login_max_delay_seconds=20)
    _fail(db, settings, 3)
    delays = [_blocked_for(db, "account:alice@example.org")]
    for _ in range(5):
        _fail(db, settings, 1)
        delays.append(_blocked_for(db, "account:alice@example.org"))
    rounded = [round(d) for d in delays]
    assert rounded == [2, 4, 8, 16, 20, 20]
    wait = db.call(throttle.retry_after, "alice@example.org", "192.0.2.1")
    assert 19 <= wait <= 21


def test_address_threshold_applies_across_accounts(db: Database, unit_settings: Settings) -> None:
    settings = unit_settings.replace(login_ip_failures_before_delay=4)
    for index in range(4):
        _fail(db, settings, 1, key=f"user{index}@example.org")
    assert db.call(throttle.retry_after, "someone-else@example.org", "192.0.2.1") > 0
    assert db.call(throttle.retry_after, "someone-else@example.org", "198.51.100.7") == 0


def test_success_clears_the_account_counter(db: Database, unit_settings: Settings) -> None:
    _fail(db, unit_settings, unit_settings.login_failures_before_delay)
    assert db.call(throttle.retry_after, "alice@example.org", "198.51.100.7") > 0
    db.call(throttle.record_success, "alice@example.org")
    assert db.call(throttle.retry_after, "alice@example.org", "198.51.100.7") == 0
    assert db.call(lambda s: s.get(LoginThrottle, "account:alice@example.org")) is None


def test_old_failures_are_forgotten_after_the_window(db: Database, unit_settings: Settings) -> None:
    _fail(db, unit_settings, unit_settings.login_failures_before_delay - 1)

    def age(session) -> None:  # type: ignore[no-untyped-def]
        row = session.get(LoginThrottle, "account:alice@example.org")
        row.last_failure_at = utcnow() - throttle.WINDOW - dt.timedelta(minutes=1)
        session.add(row)

    db.call(age)
    _fail(db, unit_settings, 1)
    row = db.call(lambda s: s.get(LoginThrottle, "account:alice@example.org"))
    assert row.failures == 1 and row.blocked_until is None
