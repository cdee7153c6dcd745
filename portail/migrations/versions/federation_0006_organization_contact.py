"""federation: the federation records an organization's or territory's contact address

Revision ID: federation_0006
Revises: federation_0005
Create Date: 2026-12-04 17:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "federation_0006"
down_revision: str | Sequence[str] | None = "federation_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_email", AutoString(length=320), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("contact_email")
