"""Usage counters for billing: jobs completed and failed, pull requests created and merged,
per organization and calendar month. One statement per increment, race-free on both
databases (an upsert on the counter's unique key)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.kernel.db import utcnow
from forgeyard.models.deps import UsageCounter

Metric = Literal["jobs_completed", "jobs_failed", "prs_created", "prs_merged"]
METRICS: tuple[Metric, ...] = ("jobs_completed", "jobs_failed", "prs_created", "prs_merged")


def current_period() -> str:
    return utcnow().strftime("%Y-%m")


async def count(session: AsyncSession, organization_id: str, metric: Metric) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(UsageCounter).values(
        organization_id=organization_id, period=current_period(), metric=metric, count=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["organization_id", "period", "metric"],
        set_={"count": UsageCounter.count + 1},
    )
    await session.execute(statement)


async def usage(session: AsyncSession, organization_id: str, period: str) -> dict[str, int]:
    rows = await session.execute(
        select(UsageCounter.metric, UsageCounter.count).where(
            UsageCounter.organization_id == organization_id, UsageCounter.period == period
        )
    )
    found = dict(rows.all())
    return {metric: int(found.get(metric, 0)) for metric in METRICS}
