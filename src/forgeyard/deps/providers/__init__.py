"""Pull request providers: where an update's pull request is opened, merged and closed."""

from forgeyard.deps.providers.base import (
    MergeMethod,
    MergeResult,
    OpenedPullRequest,
    ProviderError,
    PullRequestDraft,
    PullRequestProvider,
)

__all__ = [
    "MergeMethod",
    "MergeResult",
    "OpenedPullRequest",
    "ProviderError",
    "PullRequestDraft",
    "PullRequestProvider",
]
