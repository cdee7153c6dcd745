"""dashboard: the English description of an organization or territory (shown to English-speaking
members on its page; "" shows the French one)

Revision ID: dashboard_0004
Revises: dashboard_0003
Create Date: 2026-12-05 14:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dashboard_0004"
down_revision: str | Sequence[str] | None = "dashboard_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description_en", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("description_en")
