"""Tables that only grow without a purge, on SQLite and PostgreSQL: revoked access tokens past their
expiry (``oidc.tokens.purge_revoked``) and login-throttle counters past their window with no block
running (``accounts.throttle.purge_stale``); both are hourly tasks of the background runner."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from portail import db as database
from portail.accounts import throttle
from portail.accounts.models import LoginThrottle
from portail.config import Settings
from portail.oidc import tokens
from portail.oidc.models import RevokedAccessToken
from tests.conftest import db_call


def test_revoked_tokens_are_forgotten_once_expired_and_only_then(settings: Settings) -> None:
    now = database.utcnow()

    def seed(s: Session) -> None:
        tokens.revoke_access_token(s, "expired", int((now - dt.timedelta(minutes=1)).timestamp()))
        tokens.revoke_access_token(s, "live", int((now + dt.timedelta(minutes=5)).timestamp()))

    db_call(settings, seed)
    assert db_call(settings, tokens.purge_revoked, now) == 1
    assert db_call(settings, lambda s: sorted(s.exec(select(RevokedAccessToken.jti)).all())) == ["live"]
    assert db_call(settings, tokens.purge_revoked, now) == 0


def test_revoked_tokens_are_purged_in_bounded_chunks(settings: Settings) -> None:
    now = database.utcnow()
    past = int((now - dt.timedelta(minutes=1)).timestamp())
    db_call(settings, lambda s: [tokens.revoke_access_token(s, f"t{i}", past) for i in range(5)])
    assert db_call(settings, tokens.purge_revoked, now, 3) == 3
    assert db_call(settings, tokens.purge_revoked, now, 3) == 2


def test_stale_throttle_counters_go_and_running_blocks_stay(settings: Settings) -> None:
    now = database.utcnow()
    old = now - throttle.WINDOW - dt.timedelta(minutes=1)

    def seed(s: Session) -> None:
        s.add(LoginThrottle(key="ip:stale", failures=3, last_failure_at=old))
        s.add(
            LoginThrottle(
                key="ip:blocked", failures=9, last_failure_at=old, blocked_until=now + dt.timedelta(minutes=5)
            )
        )
        s.add(
            LoginThrottle(key="ip:ended", failures=9, last_failure_at=old, blocked_until=now - dt.timedelta(minutes=5))
        )
        s.add(LoginThrottle(key="account:recent", failures=2, last_failure_at=now - dt.timedelta(minutes=5)))

    db_call(settings, seed)
    assert db_call(settings, throttle.purge_stale, now) == 2
    left = db_call(settings, lambda s: sorted(s.exec(select(LoginThrottle.key)).all()))
    assert left == ["account:recent", "ip:blocked"]
