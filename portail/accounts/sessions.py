"""Server-side login sessions.

The browser holds an itsdangerous-signed cookie carrying a random session token; the database
keeps only its SHA-256 (``LoginSession.token_hash``) plus a separate public ``sid`` that the OIDC
provider puts in ID and logout tokens. A session ends on logout, idle or absolute expiry, password
reset, administrator action or account disabling; packages above accounts (the OIDC provider's
back-channel logout) subscribe to endings without accounts knowing them, and to logins (a deletion
request is cancelled; the hook may return a notice for the member) and login steps (a changed
privacy policy to review before going on: a step stays pending, and every member page sends there,
until it is done), all through the application's ``AccountExtensions`` (``extensions.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from portail import core_rows
from portail.accounts import extensions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.db import utcnow

TOUCH_EVERY = dt.timedelta(seconds=60)


def pending_step(db: Session, member: Member) -> str | None:
    """The first page the member still has to visit (e.g. ``/privacy/review``), or ``None``."""
    for step in list(extensions.of(db).login_steps):
        path = step(db, member)
        if path:
            return path
    return None


def step_url(path: str, next_url: str) -> str:
    """``path`` carrying ``next`` back to where the member was going."""
    return f"{path}{'&' if '?' in path else '?'}next={quote(next_url, safe='')}"


def destination_after_login(db: Session, member: Member, next_url: str) -> str:
    """Where the browser goes after a login: the first pending step (carrying ``next``), else ``next``."""
    path = pending_step(db, member)
    return step_url(path, next_url) if path else next_url


def approximate_place(ip_address: str) -> str:
    """The network a session came from, never the full address: IPv4 cut to /24, IPv6 to /48."""
    try:
        address = ipaddress.ip_address(ip_address)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    db: Session,
    member: Member,
    *,
    amr: str = "pwd",
    user_agent: str = "",
    ip_address: str = "",
    notices: list[str] | None = None,
) -> tuple[str, LoginSession]:
    """Create a session; returns the raw token (for the cookie only) and the row.

    The login hooks' notices (French messages to show the member) are appended to ``notices``.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = LoginSession(
        token_hash=hash_token(token),
        sid=secrets.token_urlsafe(18),
        member_id=member.id or 0,
        created_at=now,
        last_seen_at=now,
        auth_time=now,
        amr=amr,
        user_agent=user_agent[:400],
        ip_address=ip_address[:64],
    )
    db.add(row)
    db.flush()
    for hook in list(extensions.of(db).login):
        notice = hook(db, member, row)
        if notice and notices is not None:
            notices.append(notice)
    return token, row


def expired(row: LoginSession, settings: Settings, now: dt.datetime) -> bool:
    return now - row.last_seen_at > dt.timedelta(
        minutes=settings.session_idle_minutes
    ) or now - row.created_at > dt.timedelta(hours=settings.session_absolute_hours)


# Every page and every /authorize resolves the cookie: the session and its member in one statement,
# built once (building a select costs about as much as running it on SQLite), run in Core and made
# into instances by ``core_rows`` (loading the two entities through the ORM cost ~3× as much).
_session_table: Any = LoginSession.__table__  # type: ignore[attr-defined]
_member_table: Any = Member.__table__  # type: ignore[attr-defined]
_SESSION_WITH_MEMBER = (
    sa.select(*core_rows.labelled(_session_table, "s_"), *core_rows.labelled(_member_table, "m_"))
    .select_from(_session_table.outerjoin(_member_table, _member_table.c.id == _session_table.c.member_id))
    .where(_session_table.c.token_hash == bindparam("token_hash"))
)


def resolve(db: Session, token: str, settings: Settings) -> tuple[LoginSession, Member] | None:
    """The live session and its active member for a cookie token, ending it if it has expired."""
    db.flush()  # Core does not autoflush: a session opened in this unit of work must be found
    found = db.connection().execute(_SESSION_WITH_MEMBER, {"token_hash": hash_token(token)}).first()
    if found is None:
        return None
    row = core_rows.detached(LoginSession, found, "s_")
    member = core_rows.detached(Member, found, "m_")
    assert row is not None  # the statement's main table
    # Stored rows, as the ORM would have loaded them: touching or ending the session below, and a
    # page changing the member later (``db.add``), update them.
    core_rows.persistent(row)
    if member is not None:
        core_rows.persistent(member)
    if row.ended_at is not None:
        return None
    now = utcnow()
    if expired(row, settings, now):
        end_sessions(db, [row], "expired")
        return None
    if member is None or not member.active:
        end_sessions(db, [row], "disabled")
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        db.add(row)
    return row, member


def end_sessions(db: Session, rows: list[LoginSession], reason: str) -> list[LoginSession]:
    now = utcnow()
    ended = [row for row in rows if row.ended_at is None]
    for row in ended:
        row.ended_at = now
        row.end_reason = reason
        db.add(row)
    db.flush()
    if ended:
        for hook in list(extensions.of(db).session_end):
            hook(db, ended)
    return ended


def end_member_sessions(
    db: Session, member_id: int, reason: str, *, keep_session_id: int | None = None
) -> list[LoginSession]:
    rows = list(
        db.exec(select(LoginSession).where(LoginSession.member_id == member_id, col(LoginSession.ended_at).is_(None)))
    )
    return end_sessions(db, [r for r in rows if r.id != keep_session_id], reason)


def active_sessions(db: Session, member_id: int, settings: Settings) -> list[LoginSession]:
    now = utcnow()
    rows = db.exec(
        select(LoginSession)
        .where(LoginSession.member_id == member_id, col(LoginSession.ended_at).is_(None))
        .order_by(col(LoginSession.last_seen_at).desc())
    )
    return [row for row in rows if not expired(row, settings, now)]


def get_by_sid(db: Session, sid: str) -> LoginSession | None:
    return db.exec(select(LoginSession).where(LoginSession.sid == sid)).first()
