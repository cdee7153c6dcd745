"""Concurrent second steps on both databases: a recovery code or an authenticator code submitted
twice at once is accepted once (RFC 6238 §5.2: a one-time password is used once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pyotp
from sqlmodel import Session

from portail.accounts.members import create_member
from portail.accounts.mfa import recovery, totp
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database


def _twice(settings: Settings, fn: Callable[[Session], object]) -> list[object]:
    handle = Database(settings)
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def attempt() -> None:
        start.wait()
        outcomes.append(handle.call(fn))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handle.dispose()
    return outcomes


def _member(settings: Settings) -> int:
    handle = Database(settings)
    member = handle.call(
        lambda s: create_member(s, email="noe@example.org", name="Noé", password_hash="x", verified=True)
    )
    handle.dispose()
    return member.id or 0


def test_one_recovery_code_twice_at_once_is_accepted_once(settings: Settings) -> None:
    member_id = _member(settings)
    handle = Database(settings)
    codes = handle.call(recovery.generate, member_id)
    handle.dispose()
    outcomes = _twice(settings, lambda s: recovery.use(s, member_id, codes[0]))
    assert sorted(outcomes, key=str) == [9, None]


def test_one_authenticator_code_twice_at_once_is_accepted_once(settings: Settings) -> None:
    member_id = _member(settings)
    handle = Database(settings)
    key = settings.secret_key

    def enrol(session: Session) -> str:
        member = session.get(Member, member_id)
        assert member is not None
        secret = totp.start(session, key, member)
        totp.confirm(session, key, member, pyotp.TOTP(secret).now())
        return secret

    secret = handle.call(enrol)
    handle.dispose()
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: the confirmation used this one
    outcomes = _twice(settings, lambda s: totp.verify(s, key, member_id, code))
    assert sorted(outcomes) == [False, True]
