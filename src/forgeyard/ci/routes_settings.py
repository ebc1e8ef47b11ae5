"""Instance settings (seed 003): artifact storage and preferences (CORS origins).

Reading needs ``resources:read``; changing needs ``instance:manage`` (owners and admins) in the
organization created at first-run setup, since these settings act on every organization.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.ci import instance_settings
from forgeyard.ci import integration_schemas as schemas
from forgeyard.kernel.dependencies import DbSession

router = APIRouter(tags=["ci"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Manage = Annotated[Principal, Depends(require("instance:manage"))]


@router.get("/settings/artifact-storage")
async def get_artifact_storage(
    principal: Read, session: DbSession, runtime: Runtime
) -> schemas.ArtifactStorageOut:
    shown = await instance_settings.get_artifact_storage(
        session=session, who=principal, settings=runtime.settings
    )
    return schemas.ArtifactStorageOut(**shown)


@router.put("/settings/artifact-storage")
async def put_artifact_storage(
    body: schemas.ArtifactStorageIn, principal: Manage, session: DbSession, runtime: Runtime
) -> schemas.ArtifactStorageOut:
    """Saved only once the store answers: 400 naming the field, or 502 ``storage_error``
    with the store's reason, and nothing saved."""
    shown = await instance_settings.put_artifact_storage(
        session=session,
        who=principal,
        settings=runtime.settings,
        config=body.model_dump(exclude_none=True),
    )
    return schemas.ArtifactStorageOut(**shown)


@router.get("/settings/preferences")
async def get_preferences(
    principal: Read, session: DbSession, runtime: Runtime
) -> schemas.PreferencesOut:
    shown = await instance_settings.get_preferences(session=session, settings=runtime.settings)
    return schemas.PreferencesOut(**shown)


@router.put("/settings/preferences")
async def put_preferences(
    body: schemas.PreferencesIn,
    principal: Manage,
    session: DbSession,
    runtime: Runtime,
    request: Request,
) -> schemas.PreferencesOut:
    """Only the fields sent change; ``cors_origins: null`` goes back to the environment's.
    Other replicas apply new origins within ``CORS_REFRESH_SECONDS`` (api/middleware.py)."""
    shown = await instance_settings.put_preferences(
        session=session,
        who=principal,
        settings=runtime.settings,
        changes=body.model_dump(exclude_unset=True),
    )
    # This process applies them once committed; the cache's TTL brings them to the others.
    cors = getattr(request.app.state, "cors_origins", None)
    if cors is not None:
        cors.expire_after_commit(session)
    return schemas.PreferencesOut(**shown)
