"""Authenticate: the one place a login is decided.

A login is a password check (throttled per account and per address, ``throttle.py``) followed,
when the member has enrolled a second factor, by a second step (authenticator code, recovery code
or passkey, throttled the same way); or a passkey alone (passwordless). ``finish_password`` says
which; ``open`` opens the session with the RFC 8176 methods used (``amr``) and tells the member by
mail when the login comes from a device their account has never used.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from portail.accounts import devices, sessions, throttle
from portail.accounts.members import get_by_email
from portail.accounts.mfa import factors
from portail.accounts.models import LoginSession, Member
from portail.config import Settings


@dataclass(frozen=True)
class Opened:
    token: str  # for the cookie only
    destination: str
    session: LoginSession


@dataclass(frozen=True)
class SecondStep:
    member_id: int


def second_step_key(member_id: int) -> str:
    """The throttle's account key of a member's second step."""
    return f"second-step:{member_id}"


def lookup(db: Session, key: str, ip: str, email: str) -> tuple[int, Member | None]:
    """One unit of work before the password check: the throttle's verdict, then the member (if allowed)."""
    wait = throttle.retry_after(db, key, ip)
    return wait, None if wait else get_by_email(db, email)


def finish_password(
    db: Session,
    settings: Settings,
    member: Member,
    key: str,
    new_hash: str | None,
    user_agent: str,
    ip: str,
    next_url: str,
) -> Opened | SecondStep:
    """The password was right: open the session, or ask for the second step when one is enrolled."""
    db.add(member)
    throttle.record_success(db, key)
    if new_hash:
        member.password_hash = new_hash
        db.add(member)
    if factors.enrolled(db, member.id or 0):
        return SecondStep(member.id or 0)
    return open_session(db, settings, member, "pwd", user_agent, ip, next_url)


def open_session(
    db: Session, settings: Settings, member: Member, amr: str, user_agent: str, ip: str, next_url: str
) -> Opened:
    """Open the session of a member just authenticated by ``amr``; mail them about a new device."""
    db.add(member)
    new_device = _new_device(db, member.id or 0, user_agent)
    token, row = sessions.open_session(db, member, amr=amr, user_agent=user_agent, ip_address=ip)
    if new_device:
        device = devices.describe(user_agent)
        label = " / ".join(part for part in (device.browser, device.system) if part) or user_agent[:80]
        factors.notify(db, settings, member, factors.NEW_DEVICE, detail=label)
    return Opened(token, sessions.destination_after_login(db, member, next_url), row)


def _new_device(db: Session, member_id: int, user_agent: str) -> bool:
    """True when the member has logged in before, but never with this browser and system."""
    query = select(LoginSession.user_agent).where(LoginSession.member_id == member_id).distinct().limit(50)
    previous = list(db.exec(query))  # type: ignore[call-overload]
    if not previous:
        return False
    wanted = devices.describe(user_agent)
    return all(devices.describe(agent) != wanted for agent in previous)


def second_step_wait(db: Session, member_id: int, ip: str) -> int:
    return throttle.retry_after(db, second_step_key(member_id), ip)


def second_step_failed(db: Session, settings: Settings, member_id: int, ip: str) -> None:
    throttle.record_failure(db, second_step_key(member_id), ip, settings)


def second_step_passed(db: Session, member_id: int) -> None:
    throttle.record_success(db, second_step_key(member_id))
