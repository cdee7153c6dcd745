"""federation: the date by which a hoster must accept a new charter version

Revision ID: federation_0007
Revises: federation_0006
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision: str = "federation_0007"
down_revision: str | Sequence[str] | None = "federation_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hoster", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charter_due_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hoster", schema=None) as batch_op:
        batch_op.drop_column("charter_due_at")
