"""Unauthenticated probes at the root: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from forgeyard.kernel import metrics
from forgeyard.kernel.errors import ServiceUnavailableError
from forgeyard.kernel.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger("forgeyard.health")

# A probe that hangs is worse than one that fails: orchestrators time out and restart.
CHECK_TIMEOUT_SECONDS = 2.0


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class LivenessZ(BaseModel):
    ok: bool = True


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["connected"] = "connected"
    worker_pool: Literal["running", "stopped"]
    redis: Literal["connected", "not_configured"]


@router.get("/health", summary="Liveness (seed 000 shape)")
async def health() -> Liveness:
    return Liveness()


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


async def _readiness(request: Request) -> Readiness:
    state = request.app.state
    worker_pool = "running" if state.worker_pool_running else "stopped"
    redis_state = "connected" if state.redis is not None else "not_configured"
    probes = {"database": state.database.ping()}
    if state.redis is not None:
        probes["redis"] = state.redis.ping()
    failed = [part for part, probe in probes.items() if not await _answers(part, probe)]
    if failed:
        parts = {"database": "connected", "redis": redis_state, "worker_pool": worker_pool}
        parts.update({name: "unreachable" for name in failed})
        raise ServiceUnavailableError(
            f"not ready: {', '.join(failed)} unreachable",
            code="not_ready",
            details={"status": "not_ready", **parts},
        )
    return Readiness(worker_pool=worker_pool, redis=redis_state)


@router.get("/ready", summary="Readiness (seed 000 shape)")
async def ready(request: Request) -> Readiness:
    return await _readiness(request)


@router.get("/readyz", summary="Readiness (seed 004 path)")
async def readyz(request: Request) -> Readiness:
    return await _readiness(request)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
