"""oauth_client.token_generation: client-wide revocation that does not depend on node clocks

Every access token carries the generation of its client at issuance (claim ``cgen``); revoking all
of a client's tokens (suspension, retirement, deletion, hoster withdrawn) increments it, and a token
of an older generation is refused. Comparing the token's ``iat`` with ``tokens_revoked_at`` instead
let a token issued, on a node whose clock runs ahead, just before a suspension survive the
instance's reactivation.

A plain ADD COLUMN (not a batch alteration): on SQLite, recreating the table would drop the triggers
of ``oidc_0003``.

Revision ID: oidc_0004
Revises: oidc_0003
Create Date: 2026-12-06 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "oidc_0004"
down_revision: str | Sequence[str] | None = "oidc_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_client", sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite ≥ 3.35, PostgreSQL) keeps the version triggers of oidc_0003.
    op.execute("ALTER TABLE oauth_client DROP COLUMN token_generation")
