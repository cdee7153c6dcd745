"""notifications: Discourse webhook events (replays), the Discourse user id of a link, and the
indexes of the pull schedule (source states by staleness) and of the digests (keyset by member)

Revision ID: notifications_0005
Revises: notifications_0004
Create Date: 2026-12-04 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "notifications_0005"
down_revision: str | Sequence[str] | None = "notifications_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_webhook_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "event_id", name="uq_notification_webhook_event"),
    )
    with op.batch_alter_table("notification_webhook_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_webhook_event_received_at"), ["received_at"], unique=False)
    with op.batch_alter_table("notification_source_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index("ix_notification_source_link_remote", ["instance_id", "remote_id"], unique=False)
    with op.batch_alter_table("notification_source_state", schema=None) as batch_op:
        batch_op.create_index("ix_notification_source_state_due", ["fetched_at"], unique=False)
    with op.batch_alter_table("notification_preference", schema=None) as batch_op:
        batch_op.create_index("ix_notification_preference_digest_member", ["digest", "member_id"], unique=False)
        batch_op.create_index("ix_notification_preference_instance_member", ["instance_id", "member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notification_preference", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_preference_instance_member")
        batch_op.drop_index("ix_notification_preference_digest_member")
    with op.batch_alter_table("notification_source_state", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_source_state_due")
    with op.batch_alter_table("notification_source_link", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_source_link_remote")
        batch_op.drop_column("remote_id")
    with op.batch_alter_table("notification_webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_webhook_event_received_at"))
    op.drop_table("notification_webhook_event")
