"""dashboard: English purposes, data categories and description for instances; why a mailed link ended

Revision ID: dashboard_0003
Revises: dashboard_0002
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dashboard_0003"
down_revision: str | Sequence[str] | None = "dashboard_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description_en", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("purposes_en", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("data_categories_en", sa.JSON(), nullable=False, server_default="[]"))
    # Links ended before this revision keep "" (unknown): the page then does not claim "already used".
    with op.batch_alter_table("one_time_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.String(length=20), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("one_time_link", schema=None) as batch_op:
        batch_op.drop_column("end_reason")
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("data_categories_en")
        batch_op.drop_column("purposes_en")
        batch_op.drop_column("description_en")
