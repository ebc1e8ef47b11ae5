"""Build numbers from a counter per repository (one upsert, no retries), started from the
numbers builds already have.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 09:35:24.603684
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ci_build_counters",
        sa.Column("repository_id", sa.String(length=35), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_ci_build_counters_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_ci_build_counters")),
    )
    op.execute(
        "INSERT INTO ci_build_counters (repository_id, last_number) "
        "SELECT repository_id, MAX(number) FROM ci_builds GROUP BY repository_id"
    )


def downgrade() -> None:
    op.drop_table("ci_build_counters")
