"""Consent to share data with a client (Law 25): remembered per member × client × scopes × claims ×
privacy-policy version, and every change written to the immutable ``ConsentEvent`` ledger.

Consent is asked again when the client wants a scope or claim not yet consented, when a material
change of the privacy policy was published since (``accounts.policy``: the consent package
publishes versions; without it, the ``privacy_policy_version`` setting is the version), or after a
withdrawal. A trusted client (first-party
instance) skips the page, but its consent is still recorded, with ``implicit=True``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlmodel import Session, select

from portail.accounts import policy
from portail.config import Settings
from portail.db import utcnow
from portail.oidc.models import Consent, ConsentEvent


def current(db: Session, member_id: int, client_id: str) -> Consent | None:
    return db.exec(select(Consent).where(Consent.member_id == member_id, Consent.client_id == client_id)).first()


_consent: Any = Consent.__table__  # type: ignore[attr-defined]
_NEEDED = sa.select(_consent.c.withdrawn_at, _consent.c.policy_version, _consent.c.scopes, _consent.c.claims).where(
    _consent.c.member_id == bindparam("member_id"), _consent.c.client_id == bindparam("client_id")
)


def needed(
    db: Session, settings: Settings, member_id: int, client_id: str, scopes: list[str], claims: list[str]
) -> bool:
    """True when the member has not consented to all of ``scopes`` and ``claims`` under the
    current privacy-policy version."""
    # Every logged-in /authorize asks: the four columns it decides on, in Core (an ORM entity load
    # costs several times the statement). Core does not autoflush: flush first, as the ORM query did
    # (``record`` may have just changed the row in this unit of work).
    db.flush()
    row = db.connection().execute(_NEEDED, {"member_id": member_id, "client_id": client_id}).first()
    if row is None or row.withdrawn_at is not None or not policy.consent_is_current(db, settings, row.policy_version):
        return True
    return not (set(scopes) <= set(row.scopes.split()) and set(claims) <= set(row.claims or ()))


def record(
    db: Session,
    settings: Settings,
    member_id: int,
    client_id: str,
    scopes: list[str],
    claims: list[str],
    *,
    implicit: bool = False,
) -> Consent:
    """Remember a consent (widening what was consented before) and append it to the ledger."""
    now = utcnow()
    version = policy.current_version(db, settings)
    row = current(db, member_id, client_id)
    if row is None or row.withdrawn_at is not None:
        action = "granted"
        kept_scopes: set[str] = set()
        kept_claims: set[str] = set()
    else:
        action = "extended" if policy.consent_is_current(db, settings, row.policy_version) else "renewed"
        kept_scopes = set(row.scopes.split()) if action == "extended" else set()
        kept_claims = set(row.claims) if action == "extended" else set()
    if row is None:
        row = Consent(member_id=member_id, client_id=client_id, scopes="", policy_version="", granted_at=now)
    elif row.withdrawn_at is not None:
        row.granted_at = now
    row.scopes = " ".join(sorted(kept_scopes | set(scopes)))
    row.claims = sorted(kept_claims | set(claims))
    row.policy_version = version
    row.updated_at = now
    row.withdrawn_at = None
    row.implicit = implicit
    db.add(row)
    db.add(
        ConsentEvent(
            member_id=member_id,
            client_id=client_id,
            action=action,
            scopes=" ".join(sorted(set(scopes))),
            policy_version=version,
            at=now,
            detail=("implicit (trusted instance)" if implicit else "")
            + (f" claims: {' '.join(claims)}" if claims else ""),
        )
    )
    return row


def record_denial(db: Session, settings: Settings, member_id: int, client_id: str, scopes: list[str]) -> None:
    db.add(
        ConsentEvent(
            member_id=member_id,
            client_id=client_id,
            action="denied",
            scopes=" ".join(sorted(set(scopes))),
            policy_version=policy.current_version(db, settings),
        )
    )
