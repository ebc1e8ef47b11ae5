"""The CI capability's routes, assembled for the API."""

from fastapi import APIRouter

from forgeyard.ci import (
    routes_builds,
    routes_integrations,
    routes_pipelines,
    routes_runners,
    routes_settings,
    routes_webhooks,
)

router = APIRouter()
router.include_router(routes_pipelines.router)
router.include_router(routes_builds.router)
router.include_router(routes_runners.router)
router.include_router(routes_integrations.router)
router.include_router(routes_settings.router)
router.include_router(routes_webhooks.router)
