"""Subject identifiers (OIDC Core §8) and the member's ``preferred_username``.

- ``public``: the member's ``public_id`` (random, never their email or database id), the same for
  every client.
- ``pairwise`` (§8.1): ``base64url(HMAC-SHA256(secret_key, sector_identifier + public_id))``, one
  per sector (the host of the client's redirect URIs): stable, and not reversible without
  Portail's secret. The first issuance writes it to ``pairwise_subject`` so that
  ``member_for_subject`` is one indexed lookup and a later change of the secret key cannot change
  a subject already handed out.
- ``preferred_username``: derived once from the local part of the email (lower case, ASCII, only
  the characters of a Matrix localpart: ``a-z 0-9 . _ = -``), made unique with ``-2``, ``-3``…,
  and kept in ``member_username`` so it never changes afterwards (Matrix user ids depend on it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata

from sqlalchemy import bindparam
from sqlmodel import Session, select

from portail.accounts.models import Member
from portail.db import utcnow
from portail.oidc import rows
from portail.oidc.models import MemberUsername, OAuthClient, PairwiseSubject
from portail.oidc.upserts import insert_ignore

USERNAME_MAX = 40
_NOT_LOCALPART = re.compile(r"[^a-z0-9._=-]+")


def pairwise_value(secret_key: str, sector: str, public_id: str) -> str:
    digest = hmac.new(secret_key.encode(), (sector + public_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sector_of(client: OAuthClient) -> str:
    return client.sector_identifier or client.client_id


_PAIRWISE = select(PairwiseSubject.sub).where(
    PairwiseSubject.sector == bindparam("sector"), PairwiseSubject.member_id == bindparam("member_id")
)
_USERNAME = select(MemberUsername.username).where(MemberUsername.member_id == bindparam("member_id"))


def subject_for(db: Session, secret_key: str, member: Member, client: OAuthClient) -> str:
    """The ``sub`` this client knows the member by."""
    if client.subject_type != "pairwise":
        return member.public_id
    sector = sector_of(client)
    member_id = member.id or 0
    stored = db.connection().execute(_PAIRWISE, {"sector": sector, "member_id": member_id}).scalar()  # Core, rows.py
    if stored is not None:
        return stored
    sub = pairwise_value(secret_key, sector, member.public_id)
    insert_ignore(db, PairwiseSubject, {"sector": sector, "sub": sub, "member_id": member_id, "created_at": utcnow()})
    return sub


def member_for_subject(db: Session, client: OAuthClient, sub: str) -> Member | None:
    """The member a client's ``sub`` designates (one indexed lookup), or None."""
    if not isinstance(sub, str) or not sub or len(sub) > 64:
        return None
    if client.subject_type != "pairwise":
        return db.exec(select(Member).where(Member.public_id == sub)).first()
    member_id = db.exec(
        select(PairwiseSubject.member_id).where(PairwiseSubject.sector == sector_of(client), PairwiseSubject.sub == sub)
    ).first()
    return db.get(Member, member_id) if member_id is not None else None


# ---------------------------------------------------------------- preferred_username


def username_base(email: str) -> str:
    """A Matrix-localpart-safe base from an email's local part (``Élise.Roy+x`` → ``elise.roy``)."""
    local = email.rsplit("@", 1)[0].split("+", 1)[0]
    ascii_only = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode().lower()
    cleaned = _NOT_LOCALPART.sub("-", ascii_only)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("._=-")
    return cleaned[:USERNAME_MAX].rstrip("._=-") or "membre"


def username_for(db: Session, member: Member) -> str:
    """The member's stable ``preferred_username``, chosen on first use."""
    member_id = member.id or 0
    known = rows.known_username(db, member_id)  # joined to the token's own statement (rows.py)
    if known is not None:
        return known
    stored = db.connection().execute(_USERNAME, {"member_id": member_id}).scalar()  # Core, rows.py
    if stored is not None:
        return stored
    base = username_base(member.email)
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        candidate = base[: USERNAME_MAX - len(suffix)] + suffix
        if insert_ignore(db, MemberUsername, {"member_id": member_id, "username": candidate, "created_at": utcnow()}):
            return candidate
        again = db.exec(select(MemberUsername.username).where(MemberUsername.member_id == member_id)).first()
        if again is not None:  # another request chose it meanwhile
            return again
    raise RuntimeError("no free username")  # pragma: no cover - a thousand namesakes
