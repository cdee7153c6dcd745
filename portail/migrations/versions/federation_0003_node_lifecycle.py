"""federation: node lifecycle — a base URL is released when its node is retired or its registration expires

The unique constraint on ``instance.base_url`` goes: a node is now found by its normalized origin
(``origin_key``, indexed, computed here for existing rows by ``portail.federation.origins``), and only
live nodes hold theirs. Nodes gain a description, a contact address and the date their challenge
was issued (an unproven registration expires after ``federation_unproven_days``).

Revision ID: federation_0003
Revises: federation_0002
Create Date: 2026-12-04 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from portail.federation.origins import origin_key

revision: str = "federation_0003"
down_revision: str | Sequence[str] | None = "federation_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name() -> str:
    """The name the first migration's unnamed constraint got: PostgreSQL names it, SQLite does not."""
    return "instance_base_url_key" if op.get_bind().dialect.name == "postgresql" else "uq_instance_base_url"


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(_unique_name(), type_="unique")
        batch_op.add_column(sa.Column("origin_key", AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("contact_email", AutoString(length=320), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("challenge_issued_at", UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_instance_origin_key"), ["origin_key"], unique=False)
    instance = sa.table(
        "instance",
        sa.column("id", sa.Integer()),
        sa.column("base_url", sa.String()),
        sa.column("origin_key", sa.String()),
    )
    bind = op.get_bind()
    for row_id, base_url in bind.execute(sa.select(instance.c.id, instance.c.base_url)).all():
        try:
            key: str | None = origin_key(base_url)
        except ValueError:
            key = None
        bind.execute(instance.update().where(instance.c.id == row_id).values(origin_key=key))


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_origin_key"))
        batch_op.drop_column("challenge_issued_at")
        batch_op.drop_column("contact_email")
        batch_op.drop_column("description")
        batch_op.drop_column("origin_key")
        batch_op.create_unique_constraint("uq_instance_base_url", ["base_url"])
