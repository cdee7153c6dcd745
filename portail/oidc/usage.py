"""What each token issuance leaves behind, in the same transaction as the issuance:

- ``SessionClient``: the clients that received tokens within a login session (``sid``), whom
  back-channel logout tells when that session ends (oidc-logout reads it);
- ``DataAccess``: per member × client × kind (``token`` | ``userinfo``) × day counters, the
  access log members see under Law 25. One upsert each.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlmodel import Session

from portail.config import Settings
from portail.db import utcnow
from portail.oidc.models import DataAccess, SessionClient
from portail.oidc.upserts import prepared


def _session_client_upsert(insert: Any) -> Any:
    columns = ("sid", "client_id", "member_id", "first_at", "last_at")
    return (
        insert(SessionClient.__table__)  # type: ignore[attr-defined]
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_update(index_elements=["sid", "client_id"], set_={"last_at": bindparam("last_at")})
    )


def _access_upsert(insert: Any) -> Any:
    table = DataAccess.__table__  # type: ignore[attr-defined]
    columns = ("member_id", "client_id", "kind", "day", "first_at", "last_at", "scopes")
    return (
        insert(table)
        .values({**{name: bindparam(name) for name in columns}, "count": 1})
        .on_conflict_do_update(
            index_elements=["member_id", "client_id", "kind", "day"],
            set_={"count": table.c.count + 1, "last_at": bindparam("last_at"), "scopes": bindparam("scopes")},
        )
    )


def record_session_client(db: Session, sid: str, client_id: str, member_id: int) -> None:
    now = utcnow()
    db.connection().execute(  # Core: no ORM layer on the token path (rows.py)
        prepared(db, "session_client", _session_client_upsert),
        {"sid": sid, "client_id": client_id, "member_id": member_id, "first_at": now, "last_at": now},
    )


def count_access(db: Session, settings: Settings, member_id: int, client_id: str, kind: str, scopes: str) -> None:
    """Count one access; days are Portail's local days (setting ``timezone``), as members read them."""
    now = utcnow()
    db.connection().execute(  # Core: no ORM layer on the token path (rows.py)
        prepared(db, "data_access", _access_upsert),
        {
            "member_id": member_id,
            "client_id": client_id,
            "kind": kind,
            "day": now.astimezone(ZoneInfo(settings.timezone)).date(),
            "first_at": now,
            "last_at": now,
            "scopes": scopes[:1000],
        },
    )
