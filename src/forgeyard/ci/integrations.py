"""Forge integrations: the organization's GitHub App installations and GitLab grants, the
forge repositories each can see, and which of them build in Forgeyard.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. Connecting one (start, then complete or authorize) is in
``ci/integration_connect.py``; the forge calls in ``ci/forge_clients.py``. Secrets (GitLab
tokens and client secret) are one JSON object sealed with the instance's SecretBox; the GitLab
webhook token is kept only as a keyed hash.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.principals import Principal
from forgeyard.ci import forge_clients
from forgeyard.ci.forge_clients import ForgeRepo
from forgeyard.kernel.crypto import SecretBox, TokenHasher
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import InvalidInputError, NotFoundError
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.integrations import (
    ForgeRepository,
    Integration,
    IntegrationKind,
)
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

# --- reading and deleting -------------------------------------------------------------------


async def get_integration(
    *, session: AsyncSession, who: Principal, integration_id: str
) -> Integration:
    return await get_owned(
        session,
        Integration,
        integration_id,
        organization_id=who.organization_id,
        kind="integration",
        prefix="int",
    )


async def get_github_installation(
    *, session: AsyncSession, who: Principal, installation_id: str
) -> Integration:
    """A GitHub integration by its Forgeyard id; any other kind reads as unknown."""
    integration = await get_owned(
        session,
        Integration,
        installation_id,
        organization_id=who.organization_id,
        kind="installation",
        prefix="int",
    )
    if integration.kind != IntegrationKind.GITHUB:
        raise NotFoundError(
            f"installation {installation_id} not found",
            details={"installation_id": installation_id},
        )
    return integration


async def list_integrations(
    *, session: AsyncSession, who: Principal, page: PageParams, kind: str | None = None
) -> tuple[list[Integration], int]:
    statement = select(Integration).where(Integration.organization_id == who.organization_id)
    if kind is not None:
        statement = statement.where(Integration.kind == kind)
    return await paginate(session, statement.order_by(Integration.id), page)


async def delete_integration(*, session: AsyncSession, who: Principal, integration_id: str) -> None:
    """Forgets the integration and its forge repositories; the Forgeyard repositories that
    were linked stay (they have analyses and builds of their own)."""
    integration = await get_integration(session=session, who=who, integration_id=integration_id)
    await session.execute(
        delete(ForgeRepository).where(ForgeRepository.integration_id == integration.id)
    )
    await session.delete(integration)
    await session.flush()
    await audit.record(
        session,
        action="integration.deleted",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=integration.id,
        details={"kind": integration.kind},
    )


async def repository_counts(
    *, session: AsyncSession, integration_ids: list[str]
) -> dict[str, tuple[int, int]]:
    """Per integration: (repositories seen, repositories enabled)."""
    rows = await session.execute(
        select(ForgeRepository.integration_id, ForgeRepository.enabled).where(
            ForgeRepository.integration_id.in_(integration_ids)
        )
    )
    counts = {integration_id: (0, 0) for integration_id in integration_ids}
    for integration_id, enabled in rows:
        seen, on = counts[integration_id]
        counts[integration_id] = (seen + 1, on + int(bool(enabled)))
    return counts


# --- the forge's repositories ---------------------------------------------------------------


async def list_forge_repositories(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    integration: Integration,
    page: PageParams,
    refresh: bool = False,
) -> tuple[list[ForgeRepository], int]:
    """What the forge lets the integration see, as last read; ``refresh`` reads it again."""
    if refresh:
        await sync_repositories(
            session=session,
            integration=integration,
            found=await fetch_forge_repositories(
                session=session, settings=settings, integration=integration
            ),
        )
    statement = (
        select(ForgeRepository)
        .where(
            ForgeRepository.integration_id == integration.id,
            ForgeRepository.organization_id == who.organization_id,
        )
        .order_by(ForgeRepository.full_name)
    )
    return await paginate(session, statement, page)


async def fetch_forge_repositories(
    *, session: AsyncSession, settings: Settings, integration: Integration
) -> list[ForgeRepo]:
    if integration.kind == IntegrationKind.GITHUB:
        return await forge_clients.github_installation_repos(
            settings, int(integration.external_id or 0)
        )
    token = await gitlab_access_token(session=session, settings=settings, integration=integration)
    return await forge_clients.gitlab_projects(
        settings, base_url=integration.config["base_url"], token=token
    )


async def sync_repositories(
    *, session: AsyncSession, integration: Integration, found: list[ForgeRepo]
) -> None:
    """Makes the stored list the forge's: new ones arrive disabled, renamed ones keep their
    switch, ones the forge no longer shows are forgotten (their Forgeyard repository stays)."""
    stored = {
        row.forge_repo_id: row
        for row in await session.scalars(
            select(ForgeRepository).where(ForgeRepository.integration_id == integration.id)
        )
    }
    for repo in found:
        row = stored.pop(repo.forge_repo_id, None)
        if row is None:
            row = ForgeRepository(
                organization_id=integration.organization_id,
                integration_id=integration.id,
                forge_repo_id=repo.forge_repo_id,
                enabled=False,
            )
            session.add(row)
        row.full_name = repo.full_name
        row.clone_url = repo.clone_url
        row.default_branch = repo.default_branch
        row.private = repo.private
    for gone in stored.values():
        await session.delete(gone)
    await session.flush()


async def forge_repositories_of(
    *, session: AsyncSession, integration: Integration
) -> list[ForgeRepository]:
    rows = await session.scalars(
        select(ForgeRepository).where(ForgeRepository.integration_id == integration.id)
    )
    return list(rows)


async def set_enabled(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    integration: Integration,
    full_names: list[str],
    enabled: bool,
    ip: str | None = None,
) -> list[ForgeRepository]:
    """Switches builds on or off for forge repositories named ``owner/name``. Enabling links
    each to the organization's repository with the same clone URL, or registers one."""
    rows = await _named(session, integration, full_names)
    for row in rows:
        if enabled and row.repository_id is None:
            row.repository_id = await _linked_repository(session, who, settings, row, ip)
        row.enabled = enabled
    await session.flush()
    await audit.record(
        session,
        action="integration.repositories_enabled"
        if enabled
        else "integration.repositories_disabled",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=integration.id,
        ip_address=ip,
        details={"repositories": [row.full_name for row in rows]},
    )
    return rows


async def _named(
    session: AsyncSession, integration: Integration, full_names: list[str]
) -> list[ForgeRepository]:
    """The integration's rows for ``full_names``, in order; an unknown name refuses them all."""
    rows = {
        row.full_name.lower(): row
        for row in await session.scalars(
            select(ForgeRepository).where(ForgeRepository.integration_id == integration.id)
        )
    }
    unknown = [name for name in full_names if name.lower() not in rows]
    if unknown:
        raise InvalidInputError(
            f"the integration cannot see {', '.join(unknown[:5])} (refresh its repositories "
            "if they were added on the forge)",
            details={"field": "repositories", "unknown": unknown[:20]},
        )
    return list({id(row): row for row in (rows[n.lower()] for n in full_names)}.values())


async def _linked_repository(
    session: AsyncSession, who: Principal, settings: Settings, row: ForgeRepository, ip: str | None
) -> str:
    if not row.clone_url:
        raise InvalidInputError(
            f"the forge gave no clone URL for {row.full_name}", details={"field": "repositories"}
        )
    existing = await _repository_cloned_from(session, who.organization_id, row.clone_url)
    if existing is not None:
        return existing
    registered = await repos.register_repo(
        session=session,
        who=who,
        box=instance_secret_box(settings),
        settings=settings,
        policy=OutboundPolicy.from_settings(settings.outbound),
        new=repos.NewRepo(
            clone_url=row.clone_url, name=await _free_name(session, who, row.full_name)
        ),
        ip=ip,
    )
    return registered.id


async def _free_name(session: AsyncSession, who: Principal, full_name: str) -> str:
    """``owner/name`` as the repository's name, or ``owner/name-2`` ... when it is taken."""
    for attempt in range(1, 20):
        name = full_name if attempt == 1 else f"{full_name}-{attempt}"
        taken = await session.scalar(
            select(Repository.id).where(
                Repository.organization_id == who.organization_id, Repository.name == name
            )
        )
        if not taken:
            return name
    return f"{full_name}-{utcnow():%Y%m%d%H%M%S}"


async def _repository_cloned_from(
    session: AsyncSession, organization_id: str, clone_url: str
) -> str | None:
    """The organization's repository registered with this clone URL, written with or without
    ``.git`` or a final slash. repos.service has no such look-up, so this reads the table (read
    only: repositories are created through repos.service alone)."""
    bare = clone_url.rstrip("/").removesuffix(".git")
    spellings = {bare, f"{bare}.git", f"{bare}/", f"{bare}.git/"}
    found = await session.scalars(
        select(Repository.id)
        .where(Repository.organization_id == organization_id, Repository.clone_url.in_(spellings))
        .order_by(Repository.id)
    )
    return found.first()


# --- webhooks' look-ups ---------------------------------------------------------------------


async def github_integration(*, session: AsyncSession, installation_id: int) -> Integration | None:
    return await session.scalar(
        select(Integration).where(
            Integration.kind == IntegrationKind.GITHUB,
            Integration.external_id == str(installation_id),
        )
    )


async def gitlab_integration(
    *, session: AsyncSession, hasher: TokenHasher, token: str
) -> Integration | None:
    if not token or len(token) > 200:
        return None
    return await session.scalar(
        select(Integration).where(
            Integration.kind == IntegrationKind.GITLAB,
            Integration.inbound_token_hash == hasher.hash(token),
        )
    )


async def enabled_repository(
    *, session: AsyncSession, integration: Integration, full_name: str
) -> ForgeRepository | None:
    """The integration's forge repository ``full_name`` if it builds in Forgeyard."""
    rows = await session.scalars(
        select(ForgeRepository).where(
            ForgeRepository.integration_id == integration.id,
            ForgeRepository.full_name == full_name,
            ForgeRepository.enabled.is_(True),
            ForgeRepository.repository_id.is_not(None),
        )
    )
    return rows.first()


# --- GitLab secrets ------------------------------------------------------------------------


def seal(box: SecretBox, secrets: dict[str, Any]) -> str:
    return box.encrypt(json.dumps(secrets))


def unseal(box: SecretBox, integration: Integration) -> dict[str, Any]:
    if not integration.secrets_encrypted:
        return {}
    opened: dict[str, Any] = json.loads(box.decrypt(integration.secrets_encrypted))
    return opened


def token_secrets(token: dict[str, Any], client_secret: str) -> dict[str, Any]:
    expires_in = token.get("expires_in")
    expires_at = utcnow().timestamp() + float(expires_in) if expires_in else None
    return {
        "client_secret": client_secret,
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": expires_at,
    }


async def gitlab_access_token(
    *, session: AsyncSession, settings: Settings, integration: Integration
) -> str:
    """The stored access token, refreshed first when it has expired (GitLab's last 2 hours)."""
    box = instance_secret_box(settings)
    secrets = unseal(box, integration)
    expires_at = secrets.get("expires_at")
    expired = expires_at is not None and float(expires_at) <= utcnow().timestamp() + 30
    if expired and secrets.get("refresh_token"):
        token = await forge_clients.gitlab_refresh(
            settings,
            base_url=integration.config["base_url"],
            client_id=integration.config["client_id"],
            client_secret=secrets["client_secret"],
            refresh_token=secrets["refresh_token"],
        )
        secrets = token_secrets(token, secrets["client_secret"])
        integration.secrets_encrypted = seal(box, secrets)
        await session.flush()
    return str(secrets.get("access_token") or "")
