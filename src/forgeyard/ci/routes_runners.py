"""Runners (seed 003): registration tokens and the list for people; the runner protocol
(``forgeyard.protocol.runner``) for runners, each signed in with its own token."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.ci import build_artifacts, runners, runs, source, specs
from forgeyard.ci import build_presenters as presenters
from forgeyard.ci import build_schemas as schemas
from forgeyard.kernel.dependencies import DatabaseDep, DbSession
from forgeyard.kernel.errors import PayloadTooLargeError, UnauthorizedError
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.ci import Runner
from forgeyard.protocol import runner as protocol

router = APIRouter(tags=["ci"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Manage = Annotated[Principal, Depends(require("runners:manage"))]
UPLOAD_CHUNK = 1024 * 1024


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("a runner token is required: Authorization: Bearer <token>")
    return token.strip()


async def _this_runner(
    runner_id: str, request: Request, session: DbSession, runtime: Runtime
) -> Runner:
    return await runners.authenticate_runner(
        session=session, hasher=runtime.token_hasher, token=_bearer(request), runner_id=runner_id
    )


async def _waiting_runner(
    runner_id: str, request: Request, database: DatabaseDep, runtime: Runtime
) -> str:
    """Signed in with a transaction of its own: a claim waits for work without holding one."""
    async with database.transaction() as session:
        runner = await runners.check_in(
            session=session,
            hasher=runtime.token_hasher,
            token=_bearer(request),
            runner_id=runner_id,
        )
    return runner.id


ThisRunner = Annotated[Runner, Depends(_this_runner)]
WaitingRunner = Annotated[str, Depends(_waiting_runner)]


@router.post("/runners/registration-tokens", status_code=status.HTTP_201_CREATED)
async def create_registration_token(
    body: schemas.RegistrationTokenIn, principal: Manage, session: DbSession, runtime: Runtime
) -> schemas.RegistrationTokenOut:
    """A token runners register with; shown once."""
    row, token = await runners.create_registration_token(
        session=session,
        who=principal,
        hasher=runtime.token_hasher,
        description=body.description,
        labels=body.labels,
        valid_hours=body.valid_hours,
    )
    return presenters.registration_token_out(row, token)


@router.get("/runners/registration-tokens")
async def list_registration_tokens(
    principal: Manage, session: DbSession, page: Pagination
) -> Page[schemas.RegistrationTokenOut]:
    rows, total = await runners.list_registration_tokens(session=session, who=principal, page=page)
    return Page(
        data=[presenters.registration_token_out(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.delete("/runners/registration-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_registration_token(token_id: str, principal: Manage, session: DbSession) -> None:
    await runners.delete_registration_token(session=session, who=principal, token_id=token_id)


@router.post("/runners/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: protocol.RegisterRequest, session: DbSession, runtime: Runtime
) -> protocol.RegisterResponse:
    """A runner registers with a registration token; its own token is in the answer, once."""
    runner, token = await runners.register(
        session=session, hasher=runtime.token_hasher, request=body
    )
    lease = runtime.settings.ci.lease_seconds
    return protocol.RegisterResponse(
        id=runner.id,
        token=token,
        name=runner.name,
        labels=list(runner.labels),
        pipeline_public_key=specs.public_key(runtime.settings),
        lease_seconds=lease,
        heartbeat_seconds=lease / 3,
    )


@router.get("/runners")
async def list_runners(
    principal: Read,
    session: DbSession,
    page: Pagination,
    status: Annotated[str | None, Query(pattern="^(online|paused|offline)$")] = None,
) -> Page[schemas.RunnerOut]:
    found, total = await runners.list_runners(
        session=session, who=principal, status=status, page=page
    )
    return Page(
        data=[presenters.runner_out(r) for r in found],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.delete("/runners/{runner_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_runner(runner_id: str, principal: Manage, session: DbSession) -> None:
    await runners.delete_runner(session=session, who=principal, runner_id=runner_id)


@router.patch("/runners/{runner_id}")
async def update_runner(
    body: protocol.RunnerUpdate, runner: ThisRunner, session: DbSession
) -> protocol.RunnerView:
    runners.update_runner(runner, labels=body.labels, version=body.version, status=body.status)
    await session.flush()
    return protocol.RunnerView(
        id=runner.id,
        name=runner.name,
        labels=list(runner.labels),
        version=runner.version,
        status=runner.status,
        last_seen_at=runner.last_seen_at,
    )


@router.post("/runners/{runner_id}/heartbeat")
async def heartbeat(
    body: protocol.Heartbeat, runner: ThisRunner, session: DbSession, runtime: Runtime
) -> protocol.HeartbeatAnswer:
    cancel, lost, expires = await runs.heartbeat(session, runner, runtime.settings.ci, body.builds)
    return protocol.HeartbeatAnswer(lease_expires_at=expires, cancel=cancel, lost=lost)


@router.post("/runners/{runner_id}/claim", response_model=None)
async def claim(
    body: protocol.ClaimRequest,
    request: Request,
    runner_id: WaitingRunner,
    database: DatabaseDep,
    runtime: Runtime,
) -> protocol.ClaimedBuild | Response:
    """The oldest queued build this runner may run, leased to it; 204 after ``wait_seconds``
    with none."""
    build = await runs.claim(
        database,
        runner_id=runner_id,
        settings=runtime.settings.ci,
        wait_seconds=body.wait_seconds,
        gone=request.is_disconnected,
    )
    if build is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    assert build.lease_expires_at is not None
    return protocol.ClaimedBuild(
        build_id=build.id,
        lease_expires_at=build.lease_expires_at,
        lease_seconds=runtime.settings.ci.lease_seconds,
        spec=build.spec,
        signature=build.signature,
        key_id=specs.key_id(runtime.settings),
    )


@router.get("/runners/{runner_id}/builds/{build_id}/source")
async def build_source(
    build_id: str, runner: ThisRunner, session: DbSession, runtime: Runtime
) -> StreamingResponse:
    """The build's commit as a tar archive (no ``.git``)."""
    build = await runs.held_build(session, runner, build_id)
    archive = await source.archive(session=session, settings=runtime.settings, build=build)
    return StreamingResponse(archive, media_type="application/x-tar")


@router.post("/runners/{runner_id}/builds/{build_id}/steps/{index}")
async def report_step(
    build_id: str, index: int, body: protocol.StepReport, runner: ThisRunner, session: DbSession
) -> protocol.Ack:
    build = await runs.report_step(session, runner, build_id, index, body)
    return protocol.Ack(cancel=build.cancel_requested)


@router.post("/runners/{runner_id}/builds/{build_id}/logs")
async def append_logs(
    build_id: str, body: protocol.LogBatch, runner: ThisRunner, session: DbSession, runtime: Runtime
) -> protocol.Ack:
    build = await runs.append_logs(
        session, runner, build_id, body, runtime.settings.ci.max_log_bytes
    )
    return protocol.Ack(cancel=build.cancel_requested)


@router.put("/runners/{runner_id}/builds/{build_id}/artifacts", status_code=status.HTTP_201_CREATED)
async def upload_artifact(
    build_id: str,
    request: Request,
    runner: ThisRunner,
    session: DbSession,
    runtime: Runtime,
    path: Annotated[str, Query(min_length=1, max_length=500)],
) -> protocol.ArtifactView:
    build = await runs.held_build(session, runner, build_id)
    build_artifacts.storage_key(build, path)  # refuse a bad path before reading the body
    async with _received(request, runtime.settings.ci.max_artifact_bytes) as received:
        artifact = await build_artifacts.record_upload(
            session=session, settings=runtime.settings, build=build, path=path, source=received
        )
    return protocol.ArtifactView(
        id=artifact.id, path=artifact.path, size=artifact.size, sha256=artifact.sha256
    )


@router.post("/runners/{runner_id}/builds/{build_id}/finish")
async def finish(
    build_id: str, body: protocol.BuildResult, runner: ThisRunner, session: DbSession
) -> protocol.Ack:
    build = await runs.finish(session, runner, build_id, body)
    return protocol.Ack(cancel=build.cancel_requested)


@contextlib.asynccontextmanager
async def _received(request: Request, limit: int) -> AsyncIterator[Path]:
    """The request body in a temporary file, refused past ``limit`` bytes."""
    with tempfile.TemporaryDirectory(prefix="forgeyard-artifact-") as folder:
        target = Path(folder) / "upload"
        size = 0
        with target.open("wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(
                        f"the artifact is larger than {limit} bytes",
                        details={"limit": limit},
                    )
                handle.write(chunk)
        yield target
