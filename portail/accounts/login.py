"""Authenticate: the one place a login is decided.

A login is a password check (throttled per account and per address, ``throttle.py``) followed,
when the member has enrolled a second factor, by a second step (``second_step``: authenticator
code, recovery code or passkey, throttled the same way); or a passkey alone (``passwordless``).
``with_password`` is the whole password login (``finish_password`` its last unit of work) and says
which; ``open_session`` opens the session with the RFC 8176 methods used (``amr``) and tells the
member by mail when the login comes from a device their account has never used. The second step
also strengthens a live session (a step-up asked by a tool or a page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, select

from portail import metrics
from portail.accounts import devices, sessions, throttle
from portail.accounts.members import AccountError, audit, email_key, get_by_email, normalize_email
from portail.accounts.mfa import factors, recovery, step_up, totp, webauthn
from portail.accounts.models import LoginSession, Member
from portail.accounts.passwords import CheckUnavailable, Passwords
from portail.config import Settings
from portail.db import Database
from portail.web import N_


@dataclass(frozen=True)
class Opened:
    token: str  # for the cookie only
    destination: str
    session: LoginSession
    notices: tuple[str, ...] = ()  # French messages from the login hooks ("your deletion is cancelled")
    locale: str | None = None  # the member's language, for those notices


@dataclass(frozen=True)
class SecondStep:
    member_id: int


@dataclass(frozen=True)
class Refused:
    """A password login refused: ``throttled`` (wait ``retry_after`` seconds), ``unavailable`` (the
    service still holding this password is down: not the member's failure) or ``failure``."""

    reason: Literal["throttled", "unavailable", "failure"]
    retry_after: int = 0


def second_step_key(member_id: int) -> str:
    """The throttle's account key of a member's second step."""
    return f"second-step:{member_id}"


def account_key(email: str) -> str:
    """The throttle's account key for what was typed in the email field (even if it is no address)."""
    try:
        return email_key(normalize_email(email))
    except AccountError:
        return email.casefold()[:320]


async def with_password(
    db: Database, settings: Settings, passwords: Passwords, email: str, password: str, device: Device, next_url: str
) -> Opened | SecondStep | Refused:
    """A login with an email and a password: throttled per account and per address, the password
    checked off the database threads (and rehashed when its parameters are old), then the session
    opened or the second step asked for. Counted in ``portail_logins_total`` by result."""
    key = account_key(email)
    wait, member = await db.run(lookup, key, device.ip, email)
    if wait:
        metrics.LOGINS.labels("password", "throttled").inc()
        return Refused("throttled", wait)
    try:
        valid = await passwords.verify_async(member.password_hash if member else None, password)
    except CheckUnavailable:
        metrics.LOGINS.labels("password", "unavailable").inc()
        return Refused("unavailable")
    if not valid or member is None or not member.active:
        await db.run(throttle.record_failure, key, device.ip, settings)
        metrics.LOGINS.labels("password", "failure").inc()
        return Refused("failure")
    new_hash = await passwords.hash_async(password) if passwords.needs_rehash(member.password_hash) else None
    outcome = await db.run(finish_password, settings, member, key, new_hash, device.user_agent, device.ip, next_url)
    metrics.LOGINS.labels("password", "second_step" if isinstance(outcome, SecondStep) else "success").inc()
    return outcome


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
    notices: list[str] = []
    token, row = sessions.open_session(db, member, amr=amr, user_agent=user_agent, ip_address=ip, notices=notices)
    if new_device:
        device = devices.describe(user_agent)
        label = " / ".join(part for part in (device.browser, device.system) if part) or user_agent[:80]
        factors.notify(db, settings, member, factors.NEW_DEVICE, detail=label)
    return Opened(token, sessions.destination_after_login(db, member, next_url), row, tuple(notices), member.locale)


def _new_device(db: Session, member_id: int, user_agent: str) -> bool:
    """True when the member has logged in before, but never with this browser and system."""
    query = select(LoginSession.user_agent).where(LoginSession.member_id == member_id).distinct().limit(50)
    previous = list(db.exec(query))  # type: ignore[call-overload]
    if not previous:
        return False
    wanted = devices.describe(user_agent)
    return all(devices.describe(agent) != wanted for agent in previous)


@dataclass(frozen=True)
class Passed:
    """The second step succeeded: ``opened`` for a login, None for a live session made stronger."""

    opened: Opened | None
    recovery_left: int | None = None  # recovery codes left, when one was used


@dataclass(frozen=True)
class Rejected:
    message: str  # French source message
    retry_after: int = 0  # seconds, when throttled


@dataclass(frozen=True)
class Device:
    """Where a login comes from (kept on its session)."""

    user_agent: str
    ip: str


def second_step(
    db: Session,
    settings: Settings,
    rp: webauthn.RelyingParty,
    member_id: int,
    answer: tuple[str, str],
    device: Device,
    next_url: str,
    session_id: int | None,
) -> Passed | Rejected:
    """Check the second step (``answer``: an authenticator or recovery code, or a passkey's JSON),
    throttled like passwords; then open the session, or strengthen ``session_id`` (a step-up)."""
    code, credential = answer
    wait = throttle.retry_after(db, second_step_key(member_id), device.ip)
    if wait:
        return Rejected(N_("Trop de tentatives. Réessayez dans %(delay)s."), wait)
    amr, left, failure = "", None, N_("Ce code est incorrect ou a déjà servi.")
    member = db.get(Member, member_id)
    if member is None or not member.active:
        return Rejected(failure)
    if credential:
        asserted = webauthn.authenticate(db, rp, "second", credential, member_id)
        if isinstance(asserted, webauthn.PasskeyRefused):
            failure = asserted.message
        else:
            amr = "hwk user" if asserted.user_verified else "hwk"
    elif totp.verify(db, settings.secret_key, member_id, code):
        amr = "otp"
    elif (left := recovery.use(db, member_id, code)) is not None:
        amr = "otp"
        audit(db, "mfa.recovery_code_used", member_id=member_id, subject_type="member", subject_id=str(member_id))
        factors.notify(db, settings, member, factors.RECOVERY_USED)
    if not amr:
        throttle.record_failure(db, second_step_key(member_id), device.ip, settings)
        return Rejected(failure)
    throttle.record_success(db, second_step_key(member_id))
    if session_id is not None:
        step_up.strengthen(db, session_id, amr)
        return Passed(None, left)
    amr = step_up.merged_amr("pwd", amr)
    return Passed(open_session(db, settings, member, amr, device.user_agent, device.ip, next_url), left)


def passwordless(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, credential: str, device: Device, next_url: str
) -> Opened | webauthn.PasskeyRefused:
    """A passkey alone (discoverable credential, user verified): possession and inherence, ``mfa``."""
    asserted = webauthn.authenticate(db, rp, "login", credential, None)
    if isinstance(asserted, webauthn.PasskeyRefused):
        return asserted
    member = db.get(Member, asserted.passkey.member_id)
    if member is None or not member.active:
        return webauthn.PasskeyRefused("Cette clé d’accès n’est pas enregistrée dans Portail.")
    return open_session(db, settings, member, "hwk user mfa", device.user_agent, device.ip, next_url)


def reauthenticate_wait(db: Session, member_id: int, ip: str) -> int:
    """Seconds before this member may try again to confirm it is them (throttled like the second step)."""
    return throttle.retry_after(db, second_step_key(member_id), ip)


def reauthenticate(
    db: Session,
    settings: Settings,
    rp: webauthn.RelyingParty,
    member_id: int,
    session_id: int,
    device: Device,
    *,
    password_ok: bool,
    credential: str,
) -> bool:
    """Record a fresh authentication before a sensitive change: the password (checked by the caller,
    off the database thread) or a passkey (checked here). A failure counts against the throttle."""
    ok = password_ok
    if credential:
        ok = not isinstance(webauthn.authenticate(db, rp, "reauth", credential, member_id), webauthn.PasskeyRefused)
    if not ok:
        throttle.record_failure(db, second_step_key(member_id), device.ip, settings)
        return False
    throttle.record_success(db, second_step_key(member_id))
    step_up.reauthenticated(db, session_id)
    return True
