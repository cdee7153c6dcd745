"""mfa initial: authenticator-app secrets, recovery codes, passkeys and WebAuthn challenges

Revision ID: mfa_0001
Revises:
Create Date: 2026-12-04 16:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "mfa_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("mfa",)
depends_on: str | Sequence[str] | None = "accounts_0002"

_string = sqlmodel.sql.sqltypes.AutoString
_when = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "mfa_totp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("confirmed_at", _when(), nullable=True),
        sa.Column("last_used_at", _when(), nullable=True),
        sa.Column("last_counter", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_mfa_totp_member_id"), "mfa_totp", ["member_id"], unique=False)
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", _string(length=64), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("used_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index(op.f("ix_mfa_recovery_code_member_id"), "mfa_recovery_code", ["member_id"], unique=False)
    op.create_table(
        "mfa_passkey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", _string(length=1400), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("user_handle", _string(length=128), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("name", _string(length=100), nullable=False),
        sa.Column("transports", _string(length=200), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("last_used_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_mfa_passkey_credential_id"), "mfa_passkey", ["credential_id"], unique=True)
    op.create_index(op.f("ix_mfa_passkey_member_id"), "mfa_passkey", ["member_id"], unique=False)
    op.create_table(
        "mfa_webauthn_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge", _string(length=128), nullable=False),
        sa.Column("purpose", _string(length=20), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("used_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_mfa_webauthn_challenge_challenge"), "mfa_webauthn_challenge", ["challenge"], unique=True)
    op.create_index(
        op.f("ix_mfa_webauthn_challenge_expires_at"), "mfa_webauthn_challenge", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("mfa_webauthn_challenge")
    op.drop_table("mfa_passkey")
    op.drop_table("mfa_recovery_code")
    op.drop_table("mfa_totp")
