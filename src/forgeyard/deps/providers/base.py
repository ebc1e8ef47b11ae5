"""Where a pull request lives: one interface, one module per forge.

The update job pushes its branch itself (with git, to the repository's origin); a provider
only opens, merges, closes and comments on the pull request for a branch that is already
there. ``local`` keeps the pull request in Forgeyard; ``github`` and ``gitlab`` call the
forge's REST API through the outbound client.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

MergeMethod = Literal["merge", "squash", "rebase"]


@dataclass(frozen=True)
class PullRequestDraft:
    repository: str  # the forge's name for it: "owner/name" on GitHub, the project path on GitLab
    base: str  # the branch to merge into
    head: str  # the branch with the change, already pushed
    title: str
    body: str


@dataclass(frozen=True)
class OpenedPullRequest:
    number: int | None  # the forge's number; None for a local pull request
    url: str | None
    external_id: str | None  # the forge's own id, kept for webhooks that name it


@dataclass(frozen=True)
class MergeResult:
    sha: str | None  # the commit the target branch now points at, when the forge says


class ProviderError(Exception):
    """The forge refused or failed. ``status`` is its HTTP status (None: no answer);
    ``retryable`` says whether trying again later may help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


class PullRequestProvider(ABC):
    name: ClassVar[str]

    @abstractmethod
    async def open(self, draft: PullRequestDraft) -> OpenedPullRequest:
        """Open a pull request from ``draft.head`` into ``draft.base``."""

    @abstractmethod
    async def merge(
        self, repository: str, number: int, *, method: MergeMethod = "merge", title: str
    ) -> MergeResult:
        """Merge it; raises :class:`ProviderError` when the forge refuses (conflict, checks)."""

    @abstractmethod
    async def close(self, repository: str, number: int) -> None:
        """Close it unmerged."""

    @abstractmethod
    async def comment(self, repository: str, number: int, body: str) -> None:
        """Add a comment (the test summary when a build finishes)."""

    async def aclose(self) -> None:  # noqa: B027 - most providers hold nothing
        """Release what the provider holds (a connection pool); it is not used afterwards."""
