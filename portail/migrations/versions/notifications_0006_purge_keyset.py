"""notifications: the purge walks notifications by (received_at, id), so that each chunk starts
after the last row of the previous one even when many rows share one received_at

Revision ID: notifications_0006
Revises: notifications_0005
Create Date: 2026-12-05 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "notifications_0006"
down_revision: str | Sequence[str] | None = "notifications_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_received_id", ["received_at", "id"], unique=False)
        batch_op.drop_index("ix_notification_received_at")


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_received_at", ["received_at"], unique=False)
        batch_op.drop_index("ix_notification_received_id")
