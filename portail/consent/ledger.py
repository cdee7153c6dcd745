"""The member's consents: what each connected tool received, and the immutable ledger.

A ``Consent`` row (written by the OpenID Connect provider when the member clicks "allow", or
implicitly for a trusted instance) is the current state per member × tool; every grant, extension,
renewal, denial and withdrawal is also a ``ConsentEvent`` that is never changed afterwards (only its
``member_id`` and ``detail`` are emptied when the account is purged). Withdrawing is in
``withdrawal.py``; optional purposes in ``purposes.py``; policy versions in ``policy.py``.

Portail's own documents are in the ledger too: accepting the terms of use or the privacy policy (at
sign-up, then again after a change) is an event with ``client_id`` ``""`` and ``purpose``
``portail:terms`` or ``portail:privacy`` (purpose keys cannot contain ``:``), written through
``portail.accounts.policy.record_acceptance`` (``record_acceptance`` here). ``acceptances`` reads
them back for "Mes données" and the policy history, so both pages say the same thing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from portail.accounts.extensions import Document
from portail.consent.access_log import LastAccess, last_access, scope_words, tool_names
from portail.consent.errors import N_
from portail.federation.models import Instance
from portail.oidc.models import Consent, ConsentEvent, OAuthClient

# What a scope gives a tool, in plain words (French source; translated where shown).
SCOPE_TEXT: dict[str, str] = {
    "openid": N_("Un identifiant qui vous reconnaît dans cet outil"),
    "profile": N_("Votre nom, votre nom d’utilisateur et votre langue"),
    "email": N_("Votre adresse courriel et si elle est vérifiée"),
    "groups": N_("Les organisations et territoires dont vous êtes membre"),
    "offline_access": N_("Rester connecté à vos données quand vous n’utilisez pas l’outil"),
}
CLAIM_TEXT: dict[str, str] = {
    "sub": N_("identifiant"),
    "name": N_("nom"),
    "preferred_username": N_("nom d’utilisateur"),
    "locale": N_("langue"),
    "email": N_("adresse courriel"),
    "email_verified": N_("adresse courriel vérifiée"),
    "groups": N_("organisations"),
}
DOCUMENT_TEXT: dict[str, str] = {
    "portail:terms": N_("Conditions d’utilisation de Portail"),
    "portail:privacy": N_("Politique de confidentialité de Portail"),
}
ACTION_TEXT: dict[str, str] = {
    "granted": N_("Consentement donné"),
    "extended": N_("Consentement élargi"),
    "renewed": N_("Consentement renouvelé"),
    "withdrawn": N_("Consentement retiré"),
    "denied": N_("Consentement refusé"),
}


@dataclass(frozen=True)
class ToolConsent:
    """One connected tool as the "Mes données" page shows it."""

    client_id: str
    name: str
    base_url: str | None
    software: str | None
    purposes: list[str]
    data_categories: list[str]
    scopes: list[str]
    claims: list[str]
    granted_at: dt.datetime
    updated_at: dt.datetime
    policy_version: str
    withdrawn_at: dt.datetime | None
    implicit: bool
    access: LastAccess = field(default_factory=LastAccess)
    # What the tool declared in English (instances.toml ``purposes_en``...); empty: only in French
    purposes_en: list[str] = field(default_factory=list)
    data_categories_en: list[str] = field(default_factory=list)

    def purposes_in(self, locale: str) -> list[str]:
        """The declared purposes in the member's language, French when the tool gave no English."""
        return self.purposes_en if locale == "en" and self.purposes_en else self.purposes

    def data_categories_in(self, locale: str) -> list[str]:
        return self.data_categories_en if locale == "en" and self.data_categories_en else self.data_categories

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    @property
    def scope_texts(self) -> list[str]:
        return [SCOPE_TEXT.get(s, s) for s in self.scopes]

    @property
    def claim_texts(self) -> list[str]:
        return [CLAIM_TEXT.get(c, c) for c in self.claims]


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    at: dt.datetime
    client_id: str
    tool: str
    purpose: str
    action: str
    scopes: str
    policy_version: str
    detail: str

    @property
    def scope_words(self) -> list[str]:
        return scope_words(self.scopes)

    @property
    def action_text(self) -> str:
        return ACTION_TEXT.get(self.action, self.action)

    @property
    def document_text(self) -> str:
        """The Portail document this event accepts (``""`` for a tool or an optional purpose)."""
        return DOCUMENT_TEXT.get(self.purpose, "")


def tools(db: Session, member_id: int) -> list[ToolConsent]:
    """Every tool the member consented to (active first, then withdrawn), with what it received."""
    consents = list(db.exec(select(Consent).where(Consent.member_id == member_id)))
    ids = {c.client_id for c in consents}
    instances = {
        i.client_id: i for i in db.exec(select(Instance).where(col(Instance.client_id).in_(ids))) if i.client_id
    }
    clients = {c.client_id: c for c in db.exec(select(OAuthClient).where(col(OAuthClient.client_id).in_(ids)))}
    accesses = last_access(db, member_id)
    result = []
    for consent in consents:
        instance = instances.get(consent.client_id)
        client = clients.get(consent.client_id)
        result.append(
            ToolConsent(
                client_id=consent.client_id,
                name=instance.name if instance else client.name if client else consent.client_id,
                base_url=instance.base_url if instance else client.client_uri if client else None,
                software=instance.software if instance else None,
                purposes=list(instance.purposes) if instance else [],
                data_categories=list(instance.data_categories) if instance else [],
                purposes_en=list(instance.purposes_en) if instance else [],
                data_categories_en=list(instance.data_categories_en) if instance else [],
                scopes=consent.scopes.split(),
                claims=list(consent.claims),
                granted_at=consent.granted_at,
                updated_at=consent.updated_at,
                policy_version=consent.policy_version,
                withdrawn_at=consent.withdrawn_at,
                implicit=consent.implicit,
                access=accesses.get(consent.client_id, LastAccess()),
            )
        )
    result.sort(key=lambda t: (not t.active, t.name.casefold()))
    return result


def record_acceptance(db: Session, member_id: int, document: Document, version: str, renewed: bool) -> None:
    """The ``AccountExtensions.on_acceptance`` hook (``consent.hooks``): one ledger event per acceptance."""
    db.add(
        ConsentEvent(
            member_id=member_id,
            client_id="",
            purpose=f"portail:{document}",
            action="renewed" if renewed else "granted",
            policy_version=version,
        )
    )


def acceptances(db: Session, member_id: int) -> dict[str, LedgerEntry]:
    """The member's latest acceptance of each Portail document (``terms``, ``privacy``), from the ledger."""
    rows = db.exec(
        select(ConsentEvent)
        .where(ConsentEvent.member_id == member_id, col(ConsentEvent.purpose).in_(DOCUMENT_TEXT))
        .order_by(col(ConsentEvent.at).desc(), col(ConsentEvent.id).desc())
        .limit(200)
    )
    latest: dict[str, LedgerEntry] = {}
    for entry in _entries(db, list(rows)):
        latest.setdefault(entry.purpose.removeprefix("portail:"), entry)
    return latest


def entries(db: Session, member_id: int, *, limit: int = 200, offset: int = 0) -> list[LedgerEntry]:
    """The member's consent ledger, newest first."""
    rows = list(
        db.exec(
            select(ConsentEvent)
            .where(ConsentEvent.member_id == member_id)
            .order_by(col(ConsentEvent.at).desc(), col(ConsentEvent.id).desc())
            .offset(offset)
            .limit(limit)
        )
    )
    return _entries(db, rows)


def _entries(db: Session, rows: list[ConsentEvent]) -> list[LedgerEntry]:
    names = tool_names(db, {r.client_id for r in rows})
    return [
        LedgerEntry(
            id=r.id or 0,
            at=r.at,
            client_id=r.client_id,
            tool=names.get(r.client_id, r.client_id),
            purpose=r.purpose,
            action=r.action,
            scopes=r.scopes,
            policy_version=r.policy_version,
            detail=r.detail,
        )
        for r in rows
    ]
