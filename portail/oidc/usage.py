"""What each token issuance leaves behind, in the same transaction as the issuance:

- ``SessionClient``: the clients that received tokens within a login session (``sid``), whom
  back-channel logout tells when that session ends (oidc-logout reads it);
- ``DataAccess``: per member × client × kind (``token`` | ``userinfo``) × day counters, the
  access log members see under Law 25. One upsert each.
"""

from __future__ import annotations

from sqlmodel import Session

from portail.db import utcnow
from portail.oidc.models import DataAccess, SessionClient
from portail.oidc.upserts import upsert


def record_session_client(db: Session, sid: str, client_id: str, member_id: int) -> None:
    now = utcnow()
    upsert(
        db,
        SessionClient,
        {"sid": sid, "client_id": client_id, "member_id": member_id, "first_at": now, "last_at": now},
        ["sid", "client_id"],
        {"last_at": now},
    )


def count_access(db: Session, member_id: int, client_id: str, kind: str, scopes: str) -> None:
    now = utcnow()
    upsert(
        db,
        DataAccess,
        {
            "member_id": member_id,
            "client_id": client_id,
            "kind": kind,
            "day": now.date(),
            "count": 1,
            "first_at": now,
            "last_at": now,
            "scopes": scopes[:1000],
        },
        ["member_id", "client_id", "kind", "day"],
        {"count": DataAccess.__table__.c.count + 1, "last_at": now, "scopes": scopes[:1000]},  # type: ignore[attr-defined]
    )
