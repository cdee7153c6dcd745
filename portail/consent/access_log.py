"""Who accessed my data: token issuances and userinfo calls per tool, per day (Law 25).

The OpenID Connect provider counts each access in ``DataAccess`` (member × client × kind × day, with
the first and last time and the scopes; written once a second, ``oidc/usage.py``); this module reads
those counters for the member's pages and export, newest first, with each tool's display name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from portail.consent.errors import N_
from portail.federation.models import Instance
from portail.oidc import usage
from portail.oidc.models import DataAccess, OAuthClient

KINDS = ("token", "userinfo")

# What a scope lets a tool see, in a few plain words for the tables of "Mes données" (French source).
SCOPE_WORDS: dict[str, str] = {
    "openid": N_("votre identifiant"),
    "profile": N_("votre nom et votre langue"),
    "email": N_("votre adresse courriel"),
    "groups": N_("vos organisations"),
    "offline_access": N_("accès en votre absence"),
}


def scope_words(scopes: str) -> list[str]:
    """The plain words of a space-separated scope list, in order; a scope without words keeps its name."""
    return [SCOPE_WORDS.get(s, s) for s in scopes.split()]


@dataclass(frozen=True)
class AccessEntry:
    client_id: str
    tool: str
    kind: str  # token | userinfo
    day: dt.date
    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    scopes: str

    @property
    def scope_words(self) -> list[str]:
        return scope_words(self.scopes)


@dataclass(frozen=True)
class LastAccess:
    last_token_at: dt.datetime | None = None
    last_userinfo_at: dt.datetime | None = None
    tokens: int = 0
    userinfo_calls: int = 0


def tool_names(db: Session, client_ids: set[str]) -> dict[str, str]:
    """Display name of each client: its instance's name when it has one, else the client's name."""
    ids = {c for c in client_ids if c}
    if not ids:
        return {}
    names = {
        client.client_id: client.name
        for client in db.exec(select(OAuthClient).where(col(OAuthClient.client_id).in_(ids)))
    }
    for instance in db.exec(select(Instance).where(col(Instance.client_id).in_(ids))):
        if instance.client_id:
            names[instance.client_id] = instance.name
    return {c: names.get(c, c) for c in ids}


def entries(db: Session, member_id: int, *, limit: int = 500, offset: int = 0) -> list[AccessEntry]:
    """The member's access log, newest day first."""
    usage.write_pending(db)  # including what this node counted in the last second
    rows = list(
        db.exec(
            select(DataAccess)
            .where(DataAccess.member_id == member_id)
            .order_by(col(DataAccess.day).desc(), col(DataAccess.last_at).desc())
            .offset(offset)
            .limit(limit)
        )
    )
    names = tool_names(db, {r.client_id for r in rows})
    return [
        AccessEntry(
            client_id=r.client_id,
            tool=names.get(r.client_id, r.client_id),
            kind=r.kind,
            day=r.day,
            count=r.count,
            first_at=r.first_at,
            last_at=r.last_at,
            scopes=r.scopes,
        )
        for r in rows
    ]


def last_access(db: Session, member_id: int) -> dict[str, LastAccess]:
    """Per client: when it last obtained a token and last called userinfo, and how many times overall."""
    usage.write_pending(db)
    query = (
        select(DataAccess.client_id, DataAccess.kind, func.max(DataAccess.last_at), func.sum(DataAccess.count))
        .where(DataAccess.member_id == member_id)
        .group_by(col(DataAccess.client_id), col(DataAccess.kind))
    )
    found: dict[str, dict[str, tuple[dt.datetime | None, int]]] = {}
    for client_id, kind, last_at, total in db.exec(query):
        found.setdefault(client_id, {})[kind] = (_aware(last_at), int(total or 0))
    return {
        client_id: LastAccess(
            last_token_at=kinds.get("token", (None, 0))[0],
            last_userinfo_at=kinds.get("userinfo", (None, 0))[0],
            tokens=kinds.get("token", (None, 0))[1],
            userinfo_calls=kinds.get("userinfo", (None, 0))[1],
        )
        for client_id, kinds in found.items()
    }


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Aggregates bypass the column type on SQLite; give them back their UTC zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
