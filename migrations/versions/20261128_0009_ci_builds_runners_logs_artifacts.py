"""CI builds with their steps, logs and artifacts; runners and their registration tokens;
short-lived log-stream and download tokens.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 06:01:19.690870
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ci_access_tokens",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ci_access_tokens_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ci_access_tokens_token_hash")),
    )
    with op.batch_alter_table("ci_access_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ci_access_tokens_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "ci_registration_tokens",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ci_registration_tokens_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_registration_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ci_registration_tokens_token_hash")),
    )
    with op.batch_alter_table("ci_registration_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ci_registration_tokens_organization_id"),
            ["organization_id"],
            unique=False,
        )

    op.create_table(
        "ci_runners",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("registered_with_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ci_runners_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_runners")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ci_runners_token_hash")),
    )
    with op.batch_alter_table("ci_runners", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ci_runners_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "ci_builds",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("project_id", sa.String(length=35), nullable=True),
        sa.Column("repository_id", sa.String(length=35), nullable=False),
        sa.Column("pipeline_id", sa.String(length=35), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("retry_of_id", sa.String(length=35), nullable=True),
        sa.Column("pull_request_id", sa.String(length=40), nullable=True),
        sa.Column("runner_id", sa.String(length=35), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.String(length=40), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ci_builds_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["ci_pipelines.id"],
            name=op.f("fk_ci_builds_pipeline_id_ci_pipelines"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_ci_builds_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_ci_builds_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["runner_id"],
            ["ci_runners.id"],
            name=op.f("fk_ci_builds_runner_id_ci_runners"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_builds")),
        sa.UniqueConstraint("repository_id", "number", name=op.f("uq_ci_builds_repository_id")),
    )
    with op.batch_alter_table("ci_builds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ci_builds_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ci_builds_project_id"), ["project_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ci_builds_pull_request_id"), ["pull_request_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ci_builds_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(
            "ix_ci_builds_status_queued_at", ["status", "queued_at"], unique=False
        )

    op.create_table(
        "ci_artifacts",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("organization_id", sa.String(length=35), nullable=False),
        sa.Column("build_id", sa.String(length=35), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("storage_key", sa.String(length=600), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["ci_builds.id"],
            name=op.f("fk_ci_artifacts_build_id_ci_builds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ci_artifacts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_artifacts")),
        sa.UniqueConstraint("build_id", "path", name=op.f("uq_ci_artifacts_build_id")),
    )
    with op.batch_alter_table("ci_artifacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ci_artifacts_build_id"), ["build_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ci_artifacts_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "ci_build_steps",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("build_id", sa.String(length=35), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reused", sa.Boolean(), nullable=False),
        sa.Column("log_lines", sa.Integer(), nullable=False),
        sa.Column("log_bytes", sa.BigInteger(), nullable=False),
        sa.Column("log_truncated", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["ci_builds.id"],
            name=op.f("fk_ci_build_steps_build_id_ci_builds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_build_steps")),
        sa.UniqueConstraint("build_id", "position", name=op.f("uq_ci_build_steps_build_id")),
    )
    with op.batch_alter_table("ci_build_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ci_build_steps_build_id"), ["build_id"], unique=False)

    op.create_table(
        "ci_log_chunks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("build_id", sa.String(length=35), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("first_line", sa.Integer(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["ci_builds.id"],
            name=op.f("fk_ci_log_chunks_build_id_ci_builds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_log_chunks")),
        sa.UniqueConstraint("build_id", "seq", name=op.f("uq_ci_log_chunks_build_id")),
        sa.UniqueConstraint("build_id", "step", "first_line", name=op.f("uq_ci_log_chunks_batch")),
    )


def downgrade() -> None:
    op.drop_table("ci_log_chunks")
    with op.batch_alter_table("ci_build_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_build_steps_build_id"))

    op.drop_table("ci_build_steps")
    with op.batch_alter_table("ci_artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_artifacts_organization_id"))
        batch_op.drop_index(batch_op.f("ix_ci_artifacts_build_id"))

    op.drop_table("ci_artifacts")
    with op.batch_alter_table("ci_builds", schema=None) as batch_op:
        batch_op.drop_index("ix_ci_builds_status_queued_at")
        batch_op.drop_index(batch_op.f("ix_ci_builds_repository_id"))
        batch_op.drop_index(batch_op.f("ix_ci_builds_pull_request_id"))
        batch_op.drop_index(batch_op.f("ix_ci_builds_project_id"))
        batch_op.drop_index(batch_op.f("ix_ci_builds_organization_id"))

    op.drop_table("ci_builds")
    with op.batch_alter_table("ci_runners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_runners_organization_id"))

    op.drop_table("ci_runners")
    with op.batch_alter_table("ci_registration_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_registration_tokens_organization_id"))

    op.drop_table("ci_registration_tokens")
    with op.batch_alter_table("ci_access_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_access_tokens_organization_id"))

    op.drop_table("ci_access_tokens")
