"""federation: proof of control by HTTP or DNS TXT, re-checked periodically

Nodes gain the proof method they chose and the state of the periodic re-check. Nodes approved
before this revision proved their domain once, when nothing told their hosters to keep the
challenge in place: they start "not confirmed" (``proof_ok_at`` empty), so that a failed first
re-check invites their hoster to keep the proof in place (or to switch to DNS) instead of flagging
the node as having lost it (``proof_recheck.py``, README "Proof of control").

Revision ID: federation_0011
Revises: federation_0010
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "federation_0011"
down_revision: str | Sequence[str] | None = "federation_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proof_method", AutoString(length=10), nullable=False, server_default="http"))
        batch_op.add_column(sa.Column("proof_checked_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("proof_due_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("proof_ok_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("proof_lost_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("proof_escalated_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("proof_failure", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_instance_proof_due_at"), ["proof_due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_proof_due_at"))
        batch_op.drop_column("proof_failure")
        batch_op.drop_column("proof_escalated_at")
        batch_op.drop_column("proof_lost_at")
        batch_op.drop_column("proof_ok_at")
        batch_op.drop_column("proof_due_at")
        batch_op.drop_column("proof_checked_at")
        batch_op.drop_column("proof_method")
