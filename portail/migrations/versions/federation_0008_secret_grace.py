"""federation: a rotated client secret keeps working for a grace period (safe rotation of a node's secret)

The columns are on ``oauth_client`` (the OpenID Connect provider checks them); the federation is the
first to rotate with a grace period.

Revision ID: federation_0008
Revises: federation_0007
Create Date: 2026-12-04 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "federation_0008"
down_revision: str | Sequence[str] | None = "federation_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_hash")
