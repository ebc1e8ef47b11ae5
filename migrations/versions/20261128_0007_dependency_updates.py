"""Dependency updates: dependencies, detected updates, update jobs, pull requests,
private registries, usage counters; the repository a job works on, and dependency counts on
repositories.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 03:38:50.594118
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_counters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_usage_counters_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_counters")),
        sa.UniqueConstraint(
            "organization_id", "period", "metric", name=op.f("uq_usage_counters_organization_id")
        ),
    )
    with op.batch_alter_table("usage_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_counters_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "dependencies",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("repository_id", sa.String(length=35), nullable=False),
        sa.Column("ecosystem", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=214), nullable=False),
        sa.Column("manifest_path", sa.String(length=1000), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("specifier", sa.String(length=500), nullable=False),
        sa.Column("current_version", sa.String(length=100), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("skip", sa.Boolean(), nullable=False),
        sa.Column("pin", sa.String(length=200), nullable=True),
        sa.Column("pin_reason", sa.String(length=500), nullable=True),
        sa.Column("pin_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ignore_major", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_dependencies_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_dependencies_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dependencies")),
        sa.UniqueConstraint(
            "repository_id",
            "ecosystem",
            "name",
            "manifest_path",
            name=op.f("uq_dependencies_repository_id"),
        ),
    )
    with op.batch_alter_table("dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dependencies_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dependencies_repository_id"), ["repository_id"], unique=False
        )

    op.create_table(
        "package_registries",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("repository_id", sa.String(length=35), nullable=True),
        sa.Column("ecosystem", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("scope_key", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_package_registries_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_package_registries_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_registries")),
        sa.UniqueConstraint(
            "organization_id",
            "scope_key",
            "ecosystem",
            name=op.f("uq_package_registries_organization_id"),
        ),
    )
    with op.batch_alter_table("package_registries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_package_registries_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_package_registries_repository_id"), ["repository_id"], unique=False
        )

    op.create_table(
        "pull_requests",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("repository_id", sa.String(length=35), nullable=False),
        sa.Column("job_id", sa.String(length=35), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("base_branch", sa.String(length=250), nullable=False),
        sa.Column("head_branch", sa.String(length=250), nullable=False),
        sa.Column("head_commit", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("diff_summary", sa.JSON(), nullable=False),
        sa.Column("test_summary", sa.JSON(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("confidence_factors", sa.JSON(), nullable=True),
        sa.Column("merge_commit", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_pull_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_pull_requests_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pull_requests")),
    )
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pull_requests_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pull_requests_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pull_requests_repository_id"), ["repository_id"], unique=False
        )

    op.create_table(
        "update_jobs",
        sa.Column("job_id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("repository_id", sa.String(length=35), nullable=False),
        sa.Column("dependency", sa.String(length=214), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("from_version", sa.String(length=100), nullable=True),
        sa.Column("to_version", sa.String(length=100), nullable=False),
        sa.Column("branch", sa.String(length=250), nullable=True),
        sa.Column("base_commit", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("confidence_factors", sa.JSON(), nullable=True),
        sa.Column("test_summary", sa.JSON(), nullable=True),
        sa.Column("new_findings", sa.Integer(), nullable=True),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("pull_request_id", sa.String(length=35), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_update_jobs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_update_jobs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_update_jobs_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_update_jobs")),
    )
    with op.batch_alter_table("update_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_update_jobs_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_update_jobs_repository_id"), ["repository_id"], unique=False
        )

    op.create_table(
        "dependency_updates",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("repository_id", sa.String(length=35), nullable=False),
        sa.Column("dependency_id", sa.String(length=35), nullable=False),
        sa.Column("current_version", sa.String(length=100), nullable=True),
        sa.Column("candidate_version", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("semver_change", sa.String(length=16), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("advisories", sa.JSON(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deprecated", sa.Text(), nullable=True),
        sa.Column("current_yanked", sa.Boolean(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("blocked_reasons", sa.JSON(), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=True),
        sa.Column("held_back", sa.String(length=100), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("registry_error", sa.Text(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dependency_id"],
            ["dependencies.id"],
            name=op.f("fk_dependency_updates_dependency_id_dependencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_dependency_updates_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_dependency_updates_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dependency_updates")),
        sa.UniqueConstraint("dependency_id", name=op.f("uq_dependency_updates_dependency_id")),
    )
    with op.batch_alter_table("dependency_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dependency_updates_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dependency_updates_repository_id"), ["repository_id"], unique=False
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repository_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_repository_id"), ["repository_id"], unique=False)

    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dependency_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("outdated_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_column("outdated_count")
        batch_op.drop_column("dependency_count")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_repository_id"))
        batch_op.drop_column("repository_id")

    with op.batch_alter_table("dependency_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependency_updates_repository_id"))
        batch_op.drop_index(batch_op.f("ix_dependency_updates_organization_id"))

    op.drop_table("dependency_updates")
    with op.batch_alter_table("update_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_update_jobs_repository_id"))
        batch_op.drop_index(batch_op.f("ix_update_jobs_organization_id"))

    op.drop_table("update_jobs")
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pull_requests_repository_id"))
        batch_op.drop_index(batch_op.f("ix_pull_requests_organization_id"))
        batch_op.drop_index(batch_op.f("ix_pull_requests_job_id"))

    op.drop_table("pull_requests")
    with op.batch_alter_table("package_registries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_registries_repository_id"))
        batch_op.drop_index(batch_op.f("ix_package_registries_organization_id"))

    op.drop_table("package_registries")
    with op.batch_alter_table("dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependencies_repository_id"))
        batch_op.drop_index(batch_op.f("ix_dependencies_organization_id"))

    op.drop_table("dependencies")
    with op.batch_alter_table("usage_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_counters_organization_id"))

    op.drop_table("usage_counters")
