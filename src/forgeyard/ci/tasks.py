"""CI jobs: lost runner leases swept on a schedule, and builds of the pull requests that
Forgeyard opens (its own CI builds its update and fix pull requests)."""

from __future__ import annotations

from typing import Any

from forgeyard.ci import builds, runs
from forgeyard.jobs import JobContext, subscriber, task
from forgeyard.jobs.scheduler import periodic
from forgeyard.settings import get_settings

REAP_KIND = "ci.reap_leases"
REAP_EVERY_SECONDS = 30


@task(REAP_KIND, max_attempts=1)
async def reap_leases(ctx: JobContext) -> None:
    """Claims sweep too; this catches builds whose runners are all gone."""
    async with ctx.transaction() as session:
        swept = await runs.reap_expired(session, get_settings().ci)
    await ctx.progress(message=f"{swept} builds had lost their runner")


@subscriber("ci.build_pull_request", events=["pr.created"])
async def build_pull_request(ctx: JobContext, message: dict[str, Any]) -> None:
    async with ctx.transaction() as session:
        await builds.start_for_pull_request(
            session=session,
            settings=get_settings(),
            organization_id=message["organization_id"],
            pull=message["data"],
        )


periodic("ci-lease-sweep", REAP_KIND, every_seconds=REAP_EVERY_SECONDS)
