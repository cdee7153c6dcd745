"""notifications: pending Discourse User API key requests

Revision ID: notifications_0002
Revises: notifications_0001
Create Date: 2026-11-22 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "notifications_0002"
down_revision: str | Sequence[str] | None = "notifications_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_discourse_key_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("private_key_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification_discourse_key_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_discourse_key_request_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_discourse_key_request_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_discourse_key_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_discourse_key_request_created_at"))
        batch_op.drop_index(batch_op.f("ix_notification_discourse_key_request_member_id"))
    op.drop_table("notification_discourse_key_request")
