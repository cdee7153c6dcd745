"""federation: one row per probe outcome (30-day uptime; degraded state)

Revision ID: federation_0009
Revises: federation_0008
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "federation_0009"
down_revision: str | Sequence[str] | None = "federation_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "probe_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("state", AutoString(length=10), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("probe_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_probe_sample_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_probe_sample_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("probe_sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_probe_sample_at"))
        batch_op.drop_index(batch_op.f("ix_probe_sample_instance_id"))
    op.drop_table("probe_sample")
