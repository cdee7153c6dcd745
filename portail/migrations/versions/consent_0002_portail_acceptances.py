"""consent ledger: Portail's own acceptances (terms of use, privacy policy) of existing members

Sign-up and each re-acceptance now write a consent event (``purpose`` ``portail:terms`` or
``portail:privacy``); members who accepted before this revision get one event per document, dated
from the acceptance their account recorded, so the ledger is complete for everyone.

Revision ID: consent_0002
Revises: consent_0001
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "consent_0002"
down_revision: str | Sequence[str] | None = "consent_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "oidc_0001"

BACKFILL = """
INSERT INTO consent_event (member_id, client_id, purpose, action, scopes, policy_version, at, detail)
SELECT m.id, '', :purpose, 'granted', '', m.{version}, m.{accepted_at}, 'recorded at sign-up'
FROM member m
WHERE m.{version} <> '' AND m.{accepted_at} IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM consent_event e WHERE e.member_id = m.id AND e.purpose = :purpose)
"""


def upgrade() -> None:
    for purpose, version, accepted_at in (
        ("portail:terms", "terms_version", "terms_accepted_at"),
        ("portail:privacy", "privacy_version", "privacy_accepted_at"),
    ):
        op.execute(sa.text(BACKFILL.format(version=version, accepted_at=accepted_at)).bindparams(purpose=purpose))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM consent_event WHERE purpose IN ('portail:terms', 'portail:privacy')"))
