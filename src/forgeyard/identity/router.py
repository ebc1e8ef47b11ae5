"""The identity capability's routes, assembled for the API."""

from fastapi import APIRouter

from forgeyard.identity import routes_auth, routes_people, routes_setup

router = APIRouter()
router.include_router(routes_setup.router)
router.include_router(routes_auth.router)
router.include_router(routes_people.router)
