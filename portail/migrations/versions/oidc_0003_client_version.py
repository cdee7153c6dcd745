"""oauth_client_version: a counter bumped by triggers on every change to oauth_client

Processes cache clients in memory (``portail/oidc/client_cache.py``) and read this counter on each
request: when any process, or any SQL statement, changed a client, the counter moved and the cache
is dropped. Triggers rather than application code, so that no write path (ORM, Core, CLI, another
version of Portail, an administrator's SQL) can forget to bump it. On PostgreSQL, a TRUNCATE of
oauth_client bumps it too.

Revision ID: oidc_0003
Revises: oidc_0002
Create Date: 2026-12-05 13:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "oidc_0003"
down_revision: str | Sequence[str] | None = "oidc_0002"
branch_labels: str | Sequence[str] | None = None
# After the last migration that alters oauth_client: on SQLite a batch alteration that recreates
# the table drops its triggers (a later one must create them again, see upgrade()).
depends_on: str | Sequence[str] | None = "federation_0008"

BUMP = "UPDATE oauth_client_version SET version = version + 1 WHERE id = 1"
SQLITE_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "oauth_client_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO oauth_client_version (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION oauth_client_version_bump() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for event in ("INSERT OR UPDATE OR DELETE", "TRUNCATE"):
            name = "oauth_client_version_on_truncate" if event == "TRUNCATE" else "oauth_client_version_on_change"
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON oauth_client "
                "FOR EACH STATEMENT EXECUTE FUNCTION oauth_client_version_bump()"
            )
    else:
        for event in SQLITE_EVENTS:
            op.execute(
                f"CREATE TRIGGER oauth_client_version_on_{event} AFTER {event.upper()} ON oauth_client "
                f"BEGIN {BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS oauth_client_version_on_change ON oauth_client")
        op.execute("DROP TRIGGER IF EXISTS oauth_client_version_on_truncate ON oauth_client")
        op.execute("DROP FUNCTION IF EXISTS oauth_client_version_bump()")
    else:
        for event in SQLITE_EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS oauth_client_version_on_{event}")
    op.drop_table("oauth_client_version")
