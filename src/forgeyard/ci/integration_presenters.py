"""Integration and forge repository rows into response shapes."""

from __future__ import annotations

from forgeyard.ci import integration_schemas as schemas
from forgeyard.models.integrations import ForgeRepository, Integration

NO_REPOSITORIES = (0, 0)


def integration_out(
    integration: Integration, counts: tuple[int, int] = NO_REPOSITORIES
) -> schemas.IntegrationOut:
    return schemas.IntegrationOut(
        id=integration.id,
        kind=integration.kind,
        name=integration.name,
        status=integration.status,
        external_id=integration.external_id,
        config=dict(integration.config or {}),
        repositories_count=counts[0],
        enabled_count=counts[1],
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )


def installation_out(
    integration: Integration, counts: tuple[int, int] = NO_REPOSITORIES
) -> schemas.InstallationOut:
    config = integration.config or {}
    return schemas.InstallationOut(
        id=integration.id,
        installation_id=int(integration.external_id or 0),
        account=str(config.get("account", "")),
        account_type=str(config.get("account_type", "")),
        repository_selection=config.get("repository_selection"),
        status=integration.status,
        repositories_count=counts[0],
        enabled_count=counts[1],
        created_at=integration.created_at,
    )


def forge_repository_out(row: ForgeRepository) -> schemas.ForgeRepositoryOut:
    return schemas.ForgeRepositoryOut(
        id=row.id,
        integration_id=row.integration_id,
        forge_repo_id=row.forge_repo_id,
        full_name=row.full_name,
        clone_url=row.clone_url,
        default_branch=row.default_branch,
        private=row.private,
        enabled=row.enabled,
        repository_id=row.repository_id,
    )
