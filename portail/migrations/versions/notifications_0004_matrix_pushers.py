"""notifications: the Matrix pushers Portail registers as a push gateway

Revision ID: notifications_0004
Revises: notifications_0002
Create Date: 2026-12-04 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "notifications_0004"
down_revision: str | Sequence[str] | None = "notifications_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_matrix_pusher",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("pushkey_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_push_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "instance_id", name="uq_notification_matrix_pusher"),
        sa.UniqueConstraint("pushkey_hash"),
    )
    with op.batch_alter_table("notification_matrix_pusher", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_matrix_pusher_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notification_matrix_pusher_instance_id"), ["instance_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notification_matrix_pusher", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_matrix_pusher_instance_id"))
        batch_op.drop_index(batch_op.f("ix_notification_matrix_pusher_member_id"))
    op.drop_table("notification_matrix_pusher")
