"""accounts: audit events get a ``category`` (the log they belong to, from the action's prefix) and
an index (category, at, id), so that ``/federation/admin`` reads its latest decisions from the index
instead of scanning every audit event for ``action LIKE 'prefix%'``

Existing rows are backfilled in SQL, one range of ids at a time (``CHUNK`` rows per statement), with
the rule of ``portail.accounts.models.audit_category``.

Revision ID: accounts_0005
Revises: accounts_0004
Create Date: 2026-12-05 17:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "accounts_0005"
down_revision: str | Sequence[str] | None = "accounts_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 20_000

# The same rule as audit_category() at the time of this revision (kept here: a migration does not
# follow later changes of the code).
FEDERATION = "action LIKE 'hoster.%' OR action LIKE 'instance.%' OR action LIKE 'federation.%'" + (
    " OR action LIKE 'organization.hosting%'"
)
FIRST_WORD = {
    "postgresql": "substr(split_part(action, '.', 1), 1, 40)",
    "sqlite": "substr(CASE WHEN instr(action, '.') > 0 THEN substr(action, 1, instr(action, '.') - 1)"
    " ELSE action END, 1, 40)",
}


def backfill(connection: sa.Connection, chunk: int | None = None) -> None:
    """Give every audit event without a category its category, ``chunk`` ids per UPDATE."""
    first_word = FIRST_WORD.get(connection.dialect.name, FIRST_WORD["postgresql"])
    update = sa.text(
        f"UPDATE audit_event SET category = CASE WHEN {FEDERATION} THEN 'federation' ELSE {first_word} END"  # noqa: S608 (constants)
        " WHERE id >= :low AND id < :high AND category = ''"
    )
    low, high = connection.execute(sa.text("SELECT min(id), max(id) FROM audit_event")).one()
    if low is None:
        return
    step = chunk or CHUNK
    for start in range(int(low), int(high) + 1, step):
        connection.execute(update, {"low": start, "high": start + step})


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=40), nullable=False, server_default=""))
    backfill(op.get_bind())
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_category_at", ["category", "at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_category_at")
        batch_op.drop_column("category")
