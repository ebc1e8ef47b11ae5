"""The CI capability's routes, assembled for the API."""

from fastapi import APIRouter

from forgeyard.ci import routes_builds, routes_pipelines, routes_runners

router = APIRouter()
router.include_router(routes_pipelines.router)
router.include_router(routes_builds.router)
router.include_router(routes_runners.router)
