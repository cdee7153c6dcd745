"""Members: email normalization, creation, lookup and profile changes."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from portail.accounts import extensions, policy
from portail.accounts.models import AuditEvent, Member, audit_category
from portail.db import utcnow


def username_of(db: Session, member: Member) -> str | None:
    """The username the member's tools know them by (their Matrix localpart), when the application set
    its source (``AccountExtensions.set_username_source``: ``portail.oidc.subjects.username_for``)."""
    source = extensions.of(db).username_source
    return source(db, member) if source is not None else None


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class AccountError(Exception):
    """A refused account operation; ``message`` is a French source string, ``params`` fill it."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class FieldErrors(AccountError):
    """Every refused field of one form at once: ``errors`` maps a form field's name to its error.

    The message of the first error stands for the whole, so code that only knows ``AccountError`` still
    says something true."""

    def __init__(self, errors: dict[str, AccountError]) -> None:
        first = next(iter(errors.values()))
        super().__init__(first.message, **first.params)
        self.errors = errors


def normalize_email(raw: str) -> str:
    """Trim, NFC-normalize and lower-case the domain; refuse what is not an address."""
    value = unicodedata.normalize("NFC", raw.strip())
    if len(value) > 320 or not EMAIL_RE.match(value):
        raise AccountError("Adresse courriel invalide.")
    local, domain = value.rsplit("@", 1)
    domain = domain.lower().rstrip(".")
    if "." not in domain or domain.startswith(".") or ".." in domain:
        raise AccountError("Adresse courriel invalide.")
    return f"{local}@{domain}"


def email_key(email: str) -> str:
    """The uniqueness key: the whole normalized address, case-folded."""
    return email.casefold()


def clean_name(raw: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise AccountError("Le nom est obligatoire.")
    if len(name) > 200:
        raise AccountError("Le nom doit compter au plus %(max)s caractères.", max=200)
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise AccountError("Le nom contient des caractères non permis.")
    return name


def get_by_email(db: Session, email: str) -> Member | None:
    try:
        key = email_key(normalize_email(email))
    except AccountError:
        return None
    return db.exec(select(Member).where(Member.email_key == key)).first()


def email_taken(db: Session, email: str, except_member: int | None = None) -> bool:
    found = db.exec(select(Member.id).where(Member.email_key == email_key(email))).first()
    return found is not None and found != except_member


def create_member(
    db: Session,
    *,
    email: str,
    name: str,
    password_hash: str,
    locale: str = "fr-CA",
    verified: bool = False,
    is_admin: bool = False,
    terms_version: str = "",
    privacy_version: str = "",
) -> Member:
    """Create a member; raises ``AccountError`` for a taken address. Flushes, does not commit."""
    email = normalize_email(email)
    if email_taken(db, email):
        raise AccountError("Un compte existe déjà avec cette adresse.")
    now = utcnow()
    member = Member(
        email=email,
        email_key=email_key(email),
        name=clean_name(name),
        password_hash=password_hash,
        locale=locale,
        is_admin=is_admin,
        email_verified_at=now if verified else None,
        terms_version=terms_version,
        terms_accepted_at=now if terms_version else None,
        privacy_version=privacy_version,
        privacy_accepted_at=now if privacy_version else None,
    )
    db.add(member)
    db.flush()
    audit(db, "member.created", member_id=member.id, subject_type="member", subject_id=str(member.id))
    if terms_version:
        policy.record_acceptance(db, member.id or 0, "terms", terms_version, renewed=False)
    if privacy_version:
        policy.record_acceptance(db, member.id or 0, "privacy", privacy_version, renewed=False)
    return member


def audit(
    db: Session,
    action: str,
    *,
    actor_id: int | None = None,
    member_id: int | None = None,
    subject_type: str = "",
    subject_id: str = "",
    reason: str = "",
    ip_address: str = "",
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        category=audit_category(action),
        actor_id=actor_id,
        member_id=member_id,
        subject_type=subject_type,
        subject_id=subject_id,
        reason=reason[:2000],
        ip_address=ip_address,
    )
    db.add(event)
    return event


def any_admin(db: Session) -> bool:
    """Is there an administrator? One read of the partial index ``ix_member_admin`` (never a scan of
    ``member``: ``portail serve`` asks on every start)."""
    found = db.exec(select(Member.id).where(Member.is_admin == True).limit(1)).first()  # noqa: E712
    return found is not None


# How many members ``iter_listing`` reads per statement.
LIST_BATCH = 1000


@dataclass(frozen=True)
class MemberListing:
    """One line of ``portail users list``: what an operator sees of a member, nothing more."""

    id: int
    email: str
    name: str
    admin: bool
    verified: bool
    disabled: bool
    created_at: dt.datetime


def iter_listing(
    db: Session, *, offset: int = 0, limit: int | None = None, batch: int | None = None
) -> Iterator[MemberListing]:
    """Members by id, ``limit`` at most (``None``: all), after skipping ``offset``: read in keyset
    batches of ``batch`` rows (``LIST_BATCH``), a few columns each, so that memory stays flat
    whatever the member count. The ``offset`` is walked once, on the primary key's index."""
    size = max(1, batch or LIST_BATCH)
    core = db.connection()
    after = 0
    if offset > 0:
        start = core.execute(sa.select(col(Member.id)).order_by(col(Member.id)).offset(offset - 1).limit(1)).scalar()
        if start is None:
            return
        after = start
    columns = (
        col(Member.id),
        col(Member.email),
        col(Member.name),
        col(Member.is_admin),
        col(Member.email_verified_at),
        col(Member.disabled_at),
        col(Member.created_at),
    )
    left = limit
    while left is None or left > 0:
        wanted = size if left is None else min(size, left)
        rows = core.execute(
            sa.select(*columns).where(col(Member.id) > after).order_by(col(Member.id)).limit(wanted)
        ).all()
        for member_id, email, name, admin, verified_at, disabled_at, created_at in rows:
            yield MemberListing(
                member_id or 0, email, name, bool(admin), verified_at is not None, disabled_at is not None, created_at
            )
        if len(rows) < wanted:
            return
        after = rows[-1][0] or 0
        left = None if left is None else left - len(rows)


def any_member_after(db: Session, member_id: int) -> bool:
    """Is there a member whose id comes after ``member_id`` (the list was cut)?"""
    found = db.connection().execute(sa.select(col(Member.id)).where(col(Member.id) > member_id).limit(1)).first()
    return found is not None


def touch(member: Member) -> None:
    member.updated_at = utcnow()
