"""``create_app()``: the one place where middleware, error handlers and routers meet."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from forgeyard import __version__
from forgeyard.analysis.router import router as analysis_router
from forgeyard.api import health
from forgeyard.api.errors import install_error_handlers
from forgeyard.api.job_handlers import load_tasks
from forgeyard.api.middleware import (
    BodySizeLimitMiddleware,
    CorsOrigins,
    CrashMiddleware,
    RequestContextMiddleware,
    SettingsCORSMiddleware,
)
from forgeyard.auth.ratelimit import RateLimiter
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.ci import instance_settings
from forgeyard.ci.router import router as ci_router
from forgeyard.deps import service as deps_service
from forgeyard.deps.router import router as deps_router
from forgeyard.identity.mail import Mailer
from forgeyard.identity.router import router as identity_router
from forgeyard.jobs.notify import wakeups
from forgeyard.jobs.pool import WorkerPool
from forgeyard.kernel.db import Database
from forgeyard.kernel.keys import instance_secret
from forgeyard.kernel.redis_client import connect_redis
from forgeyard.ops.router import router as ops_router
from forgeyard.repos import service as repos_service
from forgeyard.repos.router import router as repos_router
from forgeyard.settings import Settings, get_settings
from forgeyard.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"]
# Uploads, whose bodies have limits of their own (settings.analysis).
GIT_PUSH_PATH = re.compile(rf"^{API_PREFIX}/git-uploads/[^/]+/repo\.git/")
ARCHIVE_UPLOAD_PATH = re.compile(rf"^{API_PREFIX}/sessions$")
ARTIFACT_UPLOAD_PATH = re.compile(rf"^{API_PREFIX}/runners/[^/]+/builds/[^/]+/artifacts$")
# The forges' webhook receivers: outside CORS (seed 003), no browser calls them.
FORGE_WEBHOOK_PATHS = re.compile(rf"^{API_PREFIX}/webhooks/(github|gitlab)$")


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """The API application.

    ``database`` lets a caller (the test suite) supply its own; otherwise one is opened from
    the settings when the application starts and closed when it stops.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_database = database is None
        app.state.database = database or Database.from_url(
            settings.resolved_database_url, settings.db
        )
        app.state.redis = connect_redis(settings.redis_url) if settings.redis_url else None
        database_url = settings.resolved_database_url
        await wakeups.start(database_url, settings.redis_url)  # live streams hear other processes
        if settings.jobs.workers:
            app.state.worker_pool = WorkerPool(
                app.state.database,
                database_url,
                settings.jobs,
                count=settings.jobs.workers,
                redis_url=settings.redis_url,
            )
            await app.state.worker_pool.start()
        try:
            yield
        finally:
            if app.state.worker_pool is not None:
                await app.state.worker_pool.stop()
            await wakeups.stop()
            await limiter.close()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owns_database:
                await app.state.database.dispose()

    app = FastAPI(
        title="Forgeyard",
        version=__version__,
        summary="Dependency updates, code health, CI and incidents for your repositories.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    given = settings.secret_key.get_secret_value() if settings.secret_key else None
    app.state.secret_key = instance_secret(given, settings.data_dir)
    app.state.worker_pool = None  # started with the application when settings.jobs.workers
    load_tasks()
    app.state.schema_current = False  # checked by the readiness probe
    limiter = RateLimiter(settings.redis_url)
    app.state.auth = AuthRuntime.create(settings, app.state.secret_key, limiter)
    app.state.mailer = Mailer(settings.mail)

    install_error_handlers(app)
    # Added innermost first: the request context wraps everything, so even a CORS answer
    # carries a request id and is counted; a crash is answered inside CORS, so a browser can
    # read the 500 and its request id.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        larger_bodies=[
            (GIT_PUSH_PATH, settings.analysis.max_push_bytes),
            (ARCHIVE_UPLOAD_PATH, settings.analysis.max_archive_bytes),
            (ARTIFACT_UPLOAD_PATH, settings.ci.max_artifact_bytes),
        ],
    )
    app.add_middleware(CrashMiddleware)
    app.state.cors_origins = CorsOrigins(settings.cors_origins, _saved_origins_loader(app))
    app.add_middleware(
        SettingsCORSMiddleware,
        origins=app.state.cors_origins,
        outside=FORGE_WEBHOOK_PATHS,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_HEADERS,
        allow_credentials=True,
        expose_headers=["X-Request-ID"],
    )
    app.add_middleware(RequestContextMiddleware)

    app.include_router(health.router)
    app.include_router(identity_router, prefix=API_PREFIX)
    app.include_router(ops_router, prefix=API_PREFIX)
    app.include_router(webhooks_router, prefix=API_PREFIX)
    app.include_router(repos_router, prefix=API_PREFIX)
    app.include_router(analysis_router, prefix=API_PREFIX)
    app.include_router(deps_router, prefix=API_PREFIX)
    app.include_router(ci_router, prefix=API_PREFIX)
    # GET /repos/{id} lists dependencies; the composition is made here so that repos need
    # not import deps (which builds on repos).
    repos_service.register_detail_section("dependencies", deps_service.dependency_summaries)
    return app


def _saved_origins_loader(app: FastAPI) -> Callable[[], Awaitable[list[str] | None]]:
    """Reads the origins saved in the instance's preferences (None: none saved)."""

    async def load() -> list[str] | None:
        database: Database | None = getattr(app.state, "database", None)
        if database is None:  # not started yet: the environment's origins apply
            return None
        async with database.transaction() as session:
            return await instance_settings.saved_cors_origins(session=session)

    return load
