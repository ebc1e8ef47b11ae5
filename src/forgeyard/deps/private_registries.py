"""Private package registries: an index URL and credentials per organization, or per
repository, used by scans and update jobs instead of the instance's registries.

Credentials are encrypted at rest with the instance's key and never returned; a repository's
own registry wins over the organization's, which wins over the instance's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.kernel.db import get_owned
from forgeyard.kernel.errors import ConflictError
from forgeyard.kernel.http import OutboundPolicy, resolve_and_check
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.deps import PackageRegistry
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

Ecosystem = Literal["pypi", "npm"]
ORGANIZATION = ""  # the scope key of an organization-wide registry


@dataclass(frozen=True)
class RegistryConfig:
    """Where one ecosystem's packages come from for one repository."""

    ecosystem: str
    url: str | None  # None: none configured anywhere
    username: str | None = None
    secret: str | None = None  # the password (PyPI) or token (npm), decrypted
    source: str = "instance"  # or "organization", "repository"

    def pip_index_url(self) -> str | None:
        """The index URL with the credentials pip reads from it (never stored or shown)."""
        if self.secret is None or self.url is None:
            return self.url
        parts = urlsplit(self.url)
        user = quote(self.username or "", safe="")
        netloc = f"{user}:{quote(self.secret, safe='')}@{parts.netloc}"
        return urlunsplit(parts._replace(netloc=netloc))


async def add_registry(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    ecosystem: Ecosystem,
    url: str,
    username: str | None,
    secret: str | None,
    repo_id: str | None,
) -> PackageRegistry:
    if repo_id is not None:
        await repos.get_repo(session=session, who=who, repo_id=repo_id)
    await resolve_and_check(url, OutboundPolicy.from_settings(settings.outbound), field="url")
    registry = PackageRegistry(
        organization_id=who.organization_id,
        repository_id=repo_id,
        scope_key=repo_id or ORGANIZATION,
        ecosystem=ecosystem,
        url=url,
        username=username,
        secret_encrypted=instance_secret_box(settings).encrypt(secret) if secret else None,
    )
    try:
        async with session.begin_nested():
            session.add(registry)
            await session.flush()
    except IntegrityError:
        where = f"repository {repo_id}" if repo_id else "the organization"
        raise ConflictError(
            f"{where} already has a {ecosystem} registry; delete it first",
            details={"ecosystem": ecosystem, "repo_id": repo_id},
        ) from None
    return registry


async def list_registries(
    *, session: AsyncSession, who: Principal, page: PageParams, repo_id: str | None = None
) -> tuple[list[PackageRegistry], int]:
    statement = select(PackageRegistry).where(
        PackageRegistry.organization_id == who.organization_id
    )
    if repo_id is not None:
        statement = statement.where(PackageRegistry.repository_id == repo_id)
    return await paginate(session, statement.order_by(PackageRegistry.id), page)


async def delete_registry(*, session: AsyncSession, who: Principal, registry_id: str) -> None:
    registry = await get_owned(
        session,
        PackageRegistry,
        registry_id,
        organization_id=who.organization_id,
        kind="registry",
        prefix="preg",
    )
    await session.delete(registry)
    await session.flush()


async def configs_for(
    *, session: AsyncSession, repository: Repository, settings: Settings
) -> dict[str, RegistryConfig]:
    """Each ecosystem's registry for ``repository``: its own, its organization's, or the
    instance's."""
    chosen = {
        "pypi": RegistryConfig("pypi", settings.deps.pypi_index_url),
        "npm": RegistryConfig("npm", settings.deps.npm_registry_url),
    }
    rows = await session.scalars(
        select(PackageRegistry)
        .where(
            PackageRegistry.organization_id == repository.organization_id,
            or_(
                PackageRegistry.scope_key == ORGANIZATION,
                PackageRegistry.scope_key == repository.id,
            ),
        )
        .order_by(PackageRegistry.scope_key)  # "" sorts first: the repository's own wins
    )
    box = instance_secret_box(settings)
    for row in rows:
        chosen[row.ecosystem] = RegistryConfig(
            ecosystem=row.ecosystem,
            url=row.url,
            username=row.username,
            secret=box.decrypt(row.secret_encrypted) if row.secret_encrypted else None,
            source="repository" if row.repository_id else "organization",
        )
    return chosen
