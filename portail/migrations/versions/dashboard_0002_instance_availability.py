"""dashboard: what a tile may say about an instance — demo entries and the last time one was reached

Revision ID: dashboard_0002
Revises: dashboard_0001
Create Date: 2026-12-04 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "dashboard_0002"
down_revision: str | Sequence[str] | None = "dashboard_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_up_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false()))
    # An instance seen up by an earlier prober was reached: keep saying "down" when it fails later.
    op.execute("UPDATE instance SET last_up_at = last_probe_at WHERE health = 'up'")


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("demo")
        batch_op.drop_column("last_up_at")
