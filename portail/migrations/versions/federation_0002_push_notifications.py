"""federation: instances say whether they push notifications (their client gets client_credentials)

Existing instances get the default of their software: Passerelles, Praxis, Discourse and other
software push; Nextcloud and Matrix are pulled by the notification hub.

Revision ID: federation_0002
Revises: federation_0001
Create Date: 2026-12-04 16:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0002"
down_revision: str | Sequence[str] | None = "federation_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUSHING_SOFTWARE = ("passerelles", "praxis", "discourse", "other")  # as portail.federation.provisioning says


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_notifications", sa.Boolean(), nullable=False, server_default=sa.false()))
    instance = sa.table("instance", sa.column("software", sa.String()), sa.column("push_notifications", sa.Boolean()))
    op.execute(instance.update().where(instance.c.software.in_(PUSHING_SOFTWARE)).values(push_notifications=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("push_notifications")
