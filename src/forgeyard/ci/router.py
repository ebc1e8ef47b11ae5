"""The CI capability's routes, assembled for the API."""

from fastapi import APIRouter

from forgeyard.ci import routes_pipelines

router = APIRouter()
router.include_router(routes_pipelines.router)
