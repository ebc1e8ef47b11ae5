"""Which provider a repository's pull requests go through, and what the forge calls the
repository. The token the forge receives is the repository's own, and only ever goes to the
host the repository is cloned from (``repos.service.forge_api_url``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from forgeyard.deps.providers import PullRequestProvider
from forgeyard.deps.providers.github import GitHubProvider
from forgeyard.deps.providers.gitlab import GitLabProvider
from forgeyard.deps.providers.local import LocalProvider
from forgeyard.deps.providers.rest import RestProvider
from forgeyard.kernel.crypto import SecretBox
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

FORGES: dict[str, type[RestProvider]] = {
    "github": GitHubProvider,
    "gitlab": GitLabProvider,
}


def forge_repository(repository: Repository) -> str:
    """The forge's name for the repository: the setting, else the clone URL's path."""
    chosen = repos.settings_of(repository).pull_requests
    if chosen.repository:
        return chosen.repository
    path = urlsplit(repository.clone_url or "").path.strip("/")
    return path.removesuffix(".git") or repository.name


def provider_for(
    repository: Repository,
    settings: Settings,
    *,
    base: str,
    head: str,
    head_commit: str | None = None,
) -> PullRequestProvider:
    """The repository's provider, for the pull request of ``head`` into ``base``;
    ``head_commit`` is the commit that was tested (a local merge refuses any other)."""
    chosen = repos.settings_of(repository).pull_requests
    box = instance_secret_box(settings)
    if chosen.provider in FORGES:
        return FORGES[chosen.provider](
            api_url=repos.forge_api_url(repository.clone_url, chosen.provider, chosen.api_url),
            token=_token(repository, box),
            policy=OutboundPolicy.from_settings(settings.outbound),
        )

    async def push(refspecs: list[str], expected: dict[str, str]) -> None:
        await repos.push_to_origin(
            repository=repository, settings=settings, box=box, refspecs=refspecs, expected=expected
        )

    return LocalProvider(
        mirror=repos.mirror_path(settings, repository),
        push=push,
        base=base,
        head=head,
        head_commit=head_commit,
        time_limit=settings.analysis.git_time_limit_seconds,
    )


def _token(repository: Repository, box: SecretBox) -> str:
    if not repository.credentials_encrypted:
        raise InvalidInputError(
            f"{repository.name} has no token: pull requests on a forge need one",
            details={"repository_id": repository.id},
        )
    return box.decrypt(repository.credentials_encrypted).partition("\n")[2]
