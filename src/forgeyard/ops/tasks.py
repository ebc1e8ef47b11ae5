"""Retention cleanup: on request for one organization, and daily for the whole instance."""

from __future__ import annotations

from datetime import timedelta

from forgeyard.jobs import JobContext, task
from forgeyard.jobs.scheduler import periodic
from forgeyard.kernel.logging import get_logger
from forgeyard.ops import service
from forgeyard.settings import get_settings

log = get_logger(__name__)
DAY = 24 * 60 * 60


@task(service.CLEANUP_KIND, max_attempts=3)
async def cleanup(ctx: JobContext) -> None:
    retention_days = int(ctx.payload.get("retention_days") or get_settings().jobs.retention_days)
    before = ctx.clock.now() - timedelta(days=retention_days)
    await ctx.stage("purge")
    async with ctx.transaction() as session:
        deleted = await service.purge_finished(
            session=session, before=before, organization_id=ctx.payload.get("organization_id")
        )
    await ctx.progress(message=", ".join(f"{count} {what}" for what, count in deleted.items()))
    log.info("retention_cleanup", before=before.isoformat(), **deleted)


periodic("retention-cleanup", service.CLEANUP_KIND, every_seconds=DAY)
