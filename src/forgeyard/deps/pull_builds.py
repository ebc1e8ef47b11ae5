"""A pull request's CI build, heard back: its result joins the pull request's test summary,
and the confidence is worked out again with it (``evidence.reassess_after_build``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.deps import evidence
from forgeyard.kernel.ids import is_valid_id
from forgeyard.models.deps import PullRequest, UpdateJob


async def find_pull_request(
    *, session: AsyncSession, repository_id: str, number: int
) -> str | None:
    """Our pull request with the forge's ``number`` on the repository, if we opened it."""
    found: str | None = await session.scalar(
        select(PullRequest.id).where(
            PullRequest.repository_id == repository_id, PullRequest.number == number
        )
    )
    return found


async def record_build_result(
    *, session: AsyncSession, organization_id: str, build: dict[str, Any]
) -> PullRequest | None:
    """Note how ``build`` (a ``build.finished`` event's data) ended on the pull request it
    built; None when it built none of ours."""
    pull_request_id = build.get("pull_request_id")
    if not isinstance(pull_request_id, str) or not is_valid_id("pr", pull_request_id):
        return None
    pull = await session.get(PullRequest, pull_request_id)
    if pull is None or pull.organization_id != organization_id:
        return None
    label = f"CI build #{build.get('number')}" if build.get("number") else "CI build"
    pull.test_summary = {
        **(pull.test_summary or {}),
        "ci": {"build_id": build["build_id"], "status": build["status"], "commit": build["commit"]},
    }
    record = await session.scalar(select(UpdateJob).where(UpdateJob.pull_request_id == pull.id))
    if record is not None:
        assessed = await evidence.reassess_after_build(
            session, record, build_status=str(build["status"]), build_label=label
        )
        pull.confidence, pull.confidence_factors = assessed["score"], assessed
    await session.flush()
    return pull
