"""Unauthenticated probes at the root: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from forgeyard.kernel import metrics, migrations
from forgeyard.kernel.errors import ServiceUnavailableError
from forgeyard.kernel.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger("forgeyard.health")

# A probe that hangs is worse than one that fails: orchestrators time out and restart.
CHECK_TIMEOUT_SECONDS = 2.0
HEAD_REVISION = migrations.head_revision()


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class LivenessZ(BaseModel):
    ok: bool = True


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["connected"] = "connected"
    worker_pool: Literal["running", "stopped"]
    redis: Literal["connected", "not_configured"]


@router.head("/health", include_in_schema=False)
@router.get("/health", summary="Liveness (seed 000 shape)")
async def health() -> Liveness:
    return Liveness()


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", summary="Liveness (seed 003 shape)")
async def healthz() -> LivenessZ:
    return LivenessZ()


async def _answers(part: str, probe: Awaitable[object]) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await probe
    except Exception as exc:
        log.warning("readiness check failed", part=part, error=str(exc) or type(exc).__name__)
        return False
    return True


async def _schema_is_current(request: Request) -> None:
    """Raise while the database is behind the code's newest migration.

    Once seen current it stays so for the process: schemas only move forward under it.
    """
    state = request.app.state
    if state.schema_current:
        return
    url = state.settings.resolved_database_url
    current, head = await asyncio.to_thread(migrations.current_revision, url), HEAD_REVISION
    if current != head:
        raise RuntimeError(f"schema at {current or 'empty'}, code needs {head}")
    state.schema_current = True


async def _readiness(request: Request) -> Readiness:
    state = request.app.state
    pool = state.worker_pool
    worker_pool = "running" if pool is not None and pool.running else "stopped"
    redis_state = "connected" if state.redis is not None else "not_configured"
    probes = {"database": state.database.ping()}
    if state.redis is not None:
        probes["redis"] = state.redis.ping()
    failed = [part for part, probe in probes.items() if not await _answers(part, probe)]
    if not failed and not await _answers("schema", _schema_is_current(request)):
        failed.append("schema")
    if failed:
        parts = {"database": "connected", "redis": redis_state, "worker_pool": worker_pool}
        parts.update({name: "unreachable" for name in failed if name in parts})
        if "schema" in failed:
            parts["schema"] = "behind"
        raise ServiceUnavailableError(
            f"not ready: {', '.join(failed)} {'behind' if failed == ['schema'] else 'unreachable'}",
            code="not_ready",
            details={"status": "not_ready", **parts},
        )
    return Readiness(worker_pool=worker_pool, redis=redis_state)


@router.head("/ready", include_in_schema=False)
@router.get("/ready", summary="Readiness (seed 000 shape)")
async def ready(request: Request) -> Readiness:
    return await _readiness(request)


@router.head("/readyz", include_in_schema=False)
@router.get("/readyz", summary="Readiness (seed 004 path)")
async def readyz(request: Request) -> Readiness:
    return await _readiness(request)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
