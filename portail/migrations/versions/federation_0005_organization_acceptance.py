"""federation: an organization or territory accepts the nodes that claim to serve it; members-only nodes

``claimed_organization_id`` is the organization or territory a node says it serves,
``organization_status`` where its acceptance stands; ``organization_id`` keeps meaning "serves, and
members see it" and is set only once accepted. Existing nodes keep what they had (accepted).

Revision ID: federation_0005
Revises: federation_0004
Create Date: 2026-12-04 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "federation_0005"
down_revision: str | Sequence[str] | None = "federation_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_organization_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("organization_status", AutoString(length=20), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("members_only", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_instance_claimed_organization_id"), ["claimed_organization_id"])
        batch_op.create_foreign_key(
            "fk_instance_claimed_organization_id_organization", "organization", ["claimed_organization_id"], ["id"]
        )
    instance = sa.table(
        "instance",
        sa.column("organization_id", sa.Integer()),
        sa.column("claimed_organization_id", sa.Integer()),
        sa.column("organization_status", sa.String()),
    )
    op.execute(
        instance.update()
        .where(instance.c.organization_id.is_not(None))
        .values(claimed_organization_id=instance.c.organization_id, organization_status="accepted")
    )


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_constraint("fk_instance_claimed_organization_id_organization", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_instance_claimed_organization_id"))
        batch_op.drop_column("members_only")
        batch_op.drop_column("organization_status")
        batch_op.drop_column("claimed_organization_id")
