"""Forge integrations (GitHub App installations, GitLab grants), the forge repositories they
see, their pending connection states, inbound webhook deliveries seen, instance settings.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 06:46:45.769724
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_webhook_deliveries",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("forge", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_webhook_deliveries")),
        sa.UniqueConstraint(
            "forge", "delivery_id", name=op.f("uq_inbound_webhook_deliveries_forge")
        ),
    )
    with op.batch_alter_table("inbound_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_webhook_deliveries_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "instance_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_instance_settings")),
    )
    op.create_table(
        "integration_states",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_integration_states_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_integration_states_state_hash")),
    )
    with op.batch_alter_table("integration_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integration_states_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "integrations",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets_encrypted", sa.Text(), nullable=True),
        sa.Column("inbound_token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_by_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_integrations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("inbound_token_hash", name=op.f("uq_integrations_inbound_token_hash")),
        sa.UniqueConstraint("kind", "external_id", name=op.f("uq_integrations_kind")),
    )
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integrations_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "forge_repositories",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("integration_id", sa.String(length=35), nullable=False),
        sa.Column("forge_repo_id", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=500), nullable=False),
        sa.Column("clone_url", sa.String(length=2048), nullable=True),
        sa.Column("default_branch", sa.String(length=255), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("repository_id", sa.String(length=35), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_forge_repositories_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_forge_repositories_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_forge_repositories_repository_id_repositories"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_repositories")),
        sa.UniqueConstraint(
            "integration_id", "forge_repo_id", name=op.f("uq_forge_repositories_integration_id")
        ),
    )
    with op.batch_alter_table("forge_repositories", schema=None) as batch_op:
        batch_op.create_index(
            "ix_forge_repositories_integration_full_name",
            ["integration_id", "full_name"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_forge_repositories_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_forge_repositories_repository_id"), ["repository_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("forge_repositories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_repositories_repository_id"))
        batch_op.drop_index(batch_op.f("ix_forge_repositories_organization_id"))
        batch_op.drop_index("ix_forge_repositories_integration_full_name")

    op.drop_table("forge_repositories")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integrations_organization_id"))

    op.drop_table("integrations")
    with op.batch_alter_table("integration_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_states_organization_id"))

    op.drop_table("integration_states")
    op.drop_table("instance_settings")
    with op.batch_alter_table("inbound_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_webhook_deliveries_received_at"))

    op.drop_table("inbound_webhook_deliveries")
