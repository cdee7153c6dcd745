"""SQLAlchemy Core on the hot paths: refresh, userinfo, introspection and client credentials.

Why: through the ORM (``Session.execute`` of entities, unit-of-work flushes, identity map) every
statement of a token request cost two to four times what the same statement costs in Core, and a
refresh runs five or six of them (``../shared/reference/performance.md``: ~145 µs an ORM lookup
against ~35 µs in Core on SQLite). Here statements are built once, run on the session's own
connection (same transaction as the rest of the unit of work) and return rows; the rows become
plain, session-less model instances (``portail.core_rows.detached``) that the domain code reads
like the ORM ones.

Nothing here decides anything: ``refresh.py`` keeps rotation, reuse detection and its grace
window; ``tokens.py`` keeps the checks of an access token. Writes that other code reads back
through the ORM in the same unit of work must not go through here (Core does not autoflush).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, bindparam, false
from sqlmodel import Session

from portail.accounts.models import Member
from portail.core_rows import detached, labelled
from portail.oidc import client_cache
from portail.oidc.models import Grant, MemberUsername, RefreshToken, RevokedAccessToken

_refresh: Any = RefreshToken.__table__  # type: ignore[attr-defined]
_grant: Any = Grant.__table__  # type: ignore[attr-defined]
_member: Any = Member.__table__  # type: ignore[attr-defined]
_revoked: Any = RevokedAccessToken.__table__  # type: ignore[attr-defined]
_username: Any = MemberUsername.__table__  # type: ignore[attr-defined]


# The member's ``preferred_username`` read by the statements below (joined: one statement fewer per
# refresh and userinfo), kept for ``subjects.username_for`` in the same unit of work. A username
# never changes once chosen (``subjects.py``), and the key dies with the session.
_USERNAMES = "portail_usernames"


def remember_username(db: Session, member_id: int | None, username: str | None) -> None:
    if member_id is not None and username is not None:
        db.info.setdefault(_USERNAMES, {})[member_id] = username


def known_username(db: Session, member_id: int) -> str | None:
    """The username a statement of this unit of work already read (None: ask the database)."""
    known: dict[int, str] | None = db.info.get(_USERNAMES)
    return known.get(member_id) if known else None


def run(db: Session, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
    """Execute a Core statement on the unit of work's connection (no ORM layer, no autoflush)."""
    return db.connection().execute(statement, params or {})


# ---------------------------------------------------------------- refresh tokens

REFRESH_WITH_GRANT = (
    sa.select(
        *labelled(_refresh, "t_"),
        *labelled(_grant, "g_"),
        *labelled(_member, "m_"),
        _username.c.username.label("username"),
        client_cache.VERSION.label("clients_version"),  # confirms a client taken on trust (client_cache)
    )
    .select_from(
        _refresh.join(_grant, _grant.c.id == _refresh.c.grant_id)
        .outerjoin(_member, _member.c.id == _grant.c.member_id)
        .outerjoin(_username, _username.c.member_id == _grant.c.member_id)
    )
    .where(_refresh.c.token_hash == bindparam("token_hash"))
)
ROTATE_REFRESH = (
    sa.update(_refresh)
    .where(_refresh.c.id == bindparam("token_id"), _refresh.c.rotated_at.is_(None))
    .values(rotated_at=bindparam("now"))
)
# On PostgreSQL the rotation is stamped by the database server's clock, the clock every node reads
# the grace window with (``refresh.rotate``): two refreshes of one tool reaching two nodes whose
# clocks differ must not look like a reuse (nor a late reuse like a concurrent one).
ROTATE_REFRESH_SERVER_CLOCK = (
    sa.update(_refresh)
    .where(_refresh.c.id == bindparam("token_id"), _refresh.c.rotated_at.is_(None))
    .values(rotated_at=sa.func.statement_timestamp())
)
ROTATED_AT = sa.select(_refresh.c.rotated_at).where(_refresh.c.id == bindparam("token_id"))
INSERT_GRANT = sa.insert(_grant).values({c.name: bindparam(c.name) for c in _grant.c if c.name != "id"})
INSERT_REFRESH = sa.insert(_refresh).values(
    {name: bindparam(name) for name in ("token_hash", "grant_id", "client_id", "issued_at", "expires_at")}
)


def refresh_with_grant(db: Session, token_hash: str) -> tuple[RefreshToken, Grant, Member | None] | None:
    """A refresh token, its grant and the grant's member (None if gone), in one statement."""
    row = run(db, REFRESH_WITH_GRANT, {"token_hash": token_hash}).first()
    if row is None:
        return None
    client_cache.note_seen(db, row.clients_version)
    remember_username(db, row.m_id, row.username)
    token, grant = detached(RefreshToken, row, "t_"), detached(Grant, row, "g_")
    assert token is not None and grant is not None  # inner join
    return token, grant, detached(Member, row, "m_")


# ---------------------------------------------------------------- access tokens


def _access_token_query(with_grant: bool) -> Any:
    """Grant, member and revocation of an access token, and the clients' version
    (``client_cache``), in one statement that always returns one row."""
    grant_match = _grant.c.id == bindparam("gid") if with_grant else false()
    one = sa.select(sa.literal(1).label("one")).subquery()
    return (
        sa.select(
            *labelled(_grant, "g_"),
            *labelled(_member, "m_"),
            _revoked.c.jti.label("revoked_jti"),
            _username.c.username.label("username"),
            client_cache.VERSION.label("clients_version"),
        )
        .select_from(one)
        .outerjoin(_grant, and_(grant_match, _grant.c.client_id == bindparam("client_id")))
        .outerjoin(_member, _member.c.id == _grant.c.member_id)
        .outerjoin(_username, _username.c.member_id == _grant.c.member_id)
        .outerjoin(_revoked, _revoked.c.jti == bindparam("jti"))
    )


_ACCESS_WITH_GRANT = _access_token_query(True)
_ACCESS_WITHOUT_GRANT = _access_token_query(False)


def access_token_state(
    db: Session, client_id: str, jti: str, gid: int | None
) -> tuple[Grant | None, Member | None, bool, int | None]:
    """(grant, member, jti revoked, clients' version) of an access token, in one statement."""
    statement = _ACCESS_WITH_GRANT if gid is not None else _ACCESS_WITHOUT_GRANT
    row = run(db, statement, {"client_id": client_id, "gid": gid, "jti": jti}).one()
    client_cache.note_seen(db, row.clients_version)
    remember_username(db, row.m_id, row.username)
    return (
        detached(Grant, row, "g_"),
        detached(Member, row, "m_"),
        row.revoked_jti is not None,
        row.clients_version,
    )
