"""accounts: a partial index of administrators (``portail serve`` finds one without a scan of ``member``)

Revision ID: accounts_0003
Revises: accounts_0002
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "accounts_0003"
down_revision: str | Sequence[str] | None = "accounts_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_admin",
            ["id"],
            unique=False,
            sqlite_where=sa.text("is_admin = 1"),
            postgresql_where=sa.text("is_admin"),
        )


def downgrade() -> None:
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index("ix_member_admin")
