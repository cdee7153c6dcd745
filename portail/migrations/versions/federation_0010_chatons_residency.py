"""federation: CHATONS organization and service data, where a node's data lives, its Law 25 PIA

Revision ID: federation_0010
Revises: federation_0009
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "federation_0010"
down_revision: str | Sequence[str] | None = "federation_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOSTER_TEXT = {"organization_type": 20, "legal_url": 500, "terms_url": 500, "logo_url": 500}
INSTANCE_TEXT = {
    "registration": 40,
    "install_type": 20,
    "legal_url": 500,
    "guide_url": 500,
    "software_name": 100,
    "software_license": 100,
    "data_location": 10,
    "backup_location": 10,
    "hosting_provider": 200,
    "provider_type": 20,
    "server_type": 20,
    "pia_note": 500,
}


def upgrade() -> None:
    with op.batch_alter_table("hoster", schema=None) as batch_op:
        for name, length in HOSTER_TEXT.items():
            batch_op.add_column(sa.Column(name, AutoString(length=length), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("start_date", sa.Date(), nullable=True))
    with op.batch_alter_table("instance", schema=None) as batch_op:
        for name, length in INSTANCE_TEXT.items():
            batch_op.add_column(sa.Column(name, AutoString(length=length), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("pia_recorded_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("pia_recorded_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        for name in ("pia_recorded_by", "pia_recorded_at", *reversed(INSTANCE_TEXT)):
            batch_op.drop_column(name)
    with op.batch_alter_table("hoster", schema=None) as batch_op:
        for name in ("start_date", *reversed(HOSTER_TEXT)):
            batch_op.drop_column(name)
