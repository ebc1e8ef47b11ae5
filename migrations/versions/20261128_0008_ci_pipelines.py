"""CI pipelines: stored YAML or a repository's file, per project.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 04:42:08.627564
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ci_pipelines",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("project_id", sa.String(length=35), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("repository_id", sa.String(length=35), nullable=True),
        sa.Column("path", sa.String(length=500), nullable=True),
        sa.Column("created_by_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ci_pipelines_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_ci_pipelines_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_ci_pipelines_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_pipelines")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_ci_pipelines_project_id")),
    )
    with op.batch_alter_table("ci_pipelines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ci_pipelines_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ci_pipelines_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ci_pipelines_repository_id"), ["repository_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ci_pipelines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_pipelines_repository_id"))
        batch_op.drop_index(batch_op.f("ix_ci_pipelines_project_id"))
        batch_op.drop_index(batch_op.f("ix_ci_pipelines_organization_id"))

    op.drop_table("ci_pipelines")
