"""accounts: an index of memberships by (organization_id, status, id), so that an organization's
roster reads one keyset page and a capped count instead of an ``OFFSET`` over every membership

Revision ID: accounts_0004
Revises: accounts_0003
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "accounts_0004"
down_revision: str | Sequence[str] | None = "accounts_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index("ix_membership_roster", ["organization_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index("ix_membership_roster")
