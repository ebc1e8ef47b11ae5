"""Repository jobs: fetching a mirror, and removing one after its repository is deleted."""

from __future__ import annotations

from pathlib import Path

from forgeyard.jobs import JobContext, task
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.logging import get_logger
from forgeyard.models.repo import Repository
from forgeyard.repos import service
from forgeyard.settings import get_settings

log = get_logger(__name__)


@task(service.FETCH_KIND, max_attempts=3)
async def fetch(ctx: JobContext) -> None:
    """Clone or update the mirror with no transaction open, then record the outcome."""
    repo_id = ctx.payload["repository_id"]
    organization_id = ctx.organization_id or ""
    async with ctx.transaction() as session:
        repository = await session.get(Repository, repo_id)
    if repository is None:
        return  # deleted before its first fetch
    settings = get_settings()
    result = await service.fetch_mirror(
        repository=repository, settings=settings, box=instance_secret_box(settings)
    )
    async with ctx.transaction() as session:
        recorded = await service.record_fetch(
            session=session, organization_id=organization_id, repo_id=repo_id, result=result
        )
    if recorded is None:  # deleted while git ran: the fetch may have remade its mirror
        service.remove_mirror(service.mirror_path(settings, repository), settings)
    log.info("repository_fetched", repository_id=repo_id, ok=result.ok, error=result.error)


@task(service.REMOVE_MIRROR_KIND, max_attempts=3)
async def remove_mirror(ctx: JobContext) -> None:
    service.remove_mirror(Path(ctx.payload["path"]), get_settings())
