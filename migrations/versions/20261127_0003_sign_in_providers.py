"""sign-in providers, pending sign-ins, sign out everywhere

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:54:03.810266
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_providers",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("client_secret_encrypted", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_providers")),
    )
    op.create_table(
        "auth_requests",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("provider_id", sa.String(length=35), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier_encrypted", sa.String(length=500), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["identity_providers.id"],
            name=op.f("fk_auth_requests_provider_id_identity_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_requests")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_auth_requests_state_hash")),
    )
    with op.batch_alter_table("auth_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_requests_provider_id"), ["provider_id"], unique=False
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("sessions_valid_after")

    with op.batch_alter_table("auth_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_requests_provider_id"))

    op.drop_table("auth_requests")
    op.drop_table("identity_providers")
