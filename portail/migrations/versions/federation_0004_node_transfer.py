"""federation: a node can be offered to another hoster (transfer, both hosters accept)

Revision ID: federation_0004
Revises: federation_0003
Create Date: 2026-12-04 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0004"
down_revision: str | Sequence[str] | None = "federation_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transfer_to_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_instance_transfer_to_id"), ["transfer_to_id"], unique=False)
        batch_op.create_foreign_key("fk_instance_transfer_to_id_hoster", "hoster", ["transfer_to_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_constraint("fk_instance_transfer_to_id_hoster", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_instance_transfer_to_id"))
        batch_op.drop_column("transfer_to_id")
