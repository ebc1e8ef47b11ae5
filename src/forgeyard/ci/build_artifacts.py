"""Artifacts: files a build's runner uploads, kept in the instance's artifact store.

The store is local disk unless an admin configured S3-compatible storage
(``PUT /settings/artifact-storage``). Keys are ``<organization>/<build>/<path>``, so one
organization's files never share a prefix with another's.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.ci import access, instance_settings
from forgeyard.ci.artifacts import ArtifactStore, ArtifactStream, validate_key
from forgeyard.ci.builds import get_build
from forgeyard.kernel.crypto import TokenHasher
from forgeyard.kernel.db import get_owned
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.models.ci import AccessTokenKind, Artifact, Build
from forgeyard.settings import Settings


async def store_for(session: AsyncSession, settings: Settings) -> ArtifactStore:

    store: ArtifactStore = await instance_settings.artifact_store(
        session=session, settings=settings
    )
    return store


def storage_key(build: Build, path: str) -> str:
    try:
        return validate_key(f"{build.organization_id}/{build.id}/{path}")
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"artifact path {path!r} is not a relative path inside the workspace",
            details={"field": "path"},
        ) from exc


async def record_upload(
    *, session: AsyncSession, settings: Settings, build: Build, path: str, source: Path
) -> Artifact:
    """Put ``source`` in the store as ``path`` of ``build`` and list it; 409 for a path the
    build already has."""
    key = storage_key(build, path)
    exists = await session.scalar(
        select(Artifact.id).where(Artifact.build_id == build.id, Artifact.path == path)
    )
    if exists is not None:
        raise ConflictError(
            f"build {build.id} already has an artifact {path!r}", details={"field": "path"}
        )
    stored = await (await store_for(session, settings)).put(key, source)
    artifact = Artifact(
        organization_id=build.organization_id,
        build_id=build.id,
        path=path,
        storage_key=key,
        size=stored.size,
        sha256=stored.sha256,
    )
    try:
        async with session.begin_nested():
            session.add(artifact)
            await session.flush()
    except IntegrityError:
        raise ConflictError(
            f"build {build.id} already has an artifact {path!r}", details={"field": "path"}
        ) from None
    return artifact


async def list_artifacts(*, session: AsyncSession, who: Principal, build_id: str) -> list[Artifact]:
    build = await get_build(session=session, who=who, build_id=build_id)
    rows = await session.scalars(
        select(Artifact).where(Artifact.build_id == build.id).order_by(Artifact.path)
    )
    return list(rows)


async def download_link(
    *,
    session: AsyncSession,
    who: Principal,
    hasher: TokenHasher,
    settings: Settings,
    artifact_id: str,
) -> tuple[Artifact, str, object]:
    artifact = await get_owned(
        session,
        Artifact,
        artifact_id,
        organization_id=who.organization_id,
        kind="artifact",
        prefix="art",
    )
    token, expires_at = await access.issue(
        session=session,
        hasher=hasher,
        organization_id=artifact.organization_id,
        kind=AccessTokenKind.ARTIFACT_DOWNLOAD,
        subject_id=artifact.id,
        seconds=settings.ci.download_link_seconds,
    )
    return artifact, token, expires_at


async def open_download(
    *, session: AsyncSession, hasher: TokenHasher, settings: Settings, token: str
) -> tuple[Artifact, ArtifactStream]:
    """Spend the link and open its file."""
    row = await access.spend_download_token(session=session, hasher=hasher, token=token)
    artifact = await get_owned(
        session,
        Artifact,
        row.subject_id,
        organization_id=row.organization_id,
        kind="artifact",
        prefix="art",
    )
    stream = await (await store_for(session, settings)).open(artifact.storage_key)
    return artifact, stream
