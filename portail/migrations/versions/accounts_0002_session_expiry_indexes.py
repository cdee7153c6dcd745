"""accounts: indexes for the expired-session sweep (live sessions by last use and by age)

Revision ID: accounts_0002
Revises: accounts_0001
Create Date: 2026-11-22 03:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "accounts_0002"
down_revision: str | Sequence[str] | None = "accounts_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.create_index("ix_login_session_live_last_seen", ["ended_at", "last_seen_at"], unique=False)
        batch_op.create_index("ix_login_session_live_created", ["ended_at", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.drop_index("ix_login_session_live_created")
        batch_op.drop_index("ix_login_session_live_last_seen")
