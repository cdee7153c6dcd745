"""Withdrawing a consent to a tool (Law 25: consent is withdrawable at any time).

``withdraw`` marks the consent withdrawn and writes the ledger event, spends the authorization codes
not yet exchanged (a code issued before the withdrawal never becomes a token after it), revokes the
tool's grants (refresh tokens and their access tokens: introspection answers ``active: false``), and
sends the tool a back-channel logout for every session in which it received tokens. The next login
to that tool asks for consent again, since the provider only honours a consent that is not withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select, update

from portail.accounts.members import audit
from portail.consent.access_log import tool_names
from portail.consent.errors import ConsentError
from portail.db import utcnow
from portail.oidc import backchannel, tokens
from portail.oidc.models import AuthorizationCode, Consent, ConsentEvent


@dataclass(frozen=True)
class Withdrawal:
    client_id: str
    tool: str
    grants_revoked: int
    logouts_sent: int


def withdraw(db: Session, member_id: int, client_id: str, *, ip_address: str = "") -> Withdrawal:
    """Withdraw the member's consent to a tool: tokens revoked, tool logged out, ledger written.

    Refuses a tool the member never consented to (404) and a consent already withdrawn (409); the
    conditional update makes a concurrent second withdrawal lose cleanly.
    """
    consent = db.exec(select(Consent).where(Consent.member_id == member_id, Consent.client_id == client_id)).first()
    if consent is None:
        raise ConsentError("Vous n’avez jamais donné votre consentement à cet outil.", status=404)
    now = utcnow()
    result = db.exec(
        update(Consent)
        .where(col(Consent.id) == consent.id, col(Consent.withdrawn_at).is_(None))
        .values(withdrawn_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        raise ConsentError("Votre consentement à cet outil est déjà retiré.", status=409)
    db.add(
        ConsentEvent(
            member_id=member_id,
            client_id=client_id,
            action="withdrawn",
            scopes=consent.scopes,
            policy_version=consent.policy_version,
            at=now,
            detail="member",
        )
    )
    # A code issued before the withdrawal must not become a token after it.
    db.exec(
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.member_id) == member_id,
            col(AuthorizationCode.client_id) == client_id,
            col(AuthorizationCode.used_at).is_(None),
        )
        .values(used_at=now)
    )
    revoked = tokens.revoke_grants(db, client_id=client_id, member_id=member_id, reason="consent-withdrawn")
    logged_out = backchannel.logout_member_from_client(db, member_id, client_id)
    audit(
        db,
        "consent.withdrawn",
        actor_id=member_id,
        member_id=member_id,
        subject_type="client",
        subject_id=client_id,
        ip_address=ip_address,
    )
    db.flush()
    name = tool_names(db, {client_id}).get(client_id, client_id)
    return Withdrawal(client_id=client_id, tool=name, grants_revoked=revoked, logouts_sent=len(logged_out))
