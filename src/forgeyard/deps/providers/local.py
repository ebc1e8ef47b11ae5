"""The ``local`` provider: the pull request lives in Forgeyard; merging it is a real git merge
of the tested commit into the target branch, pushed to the repository's origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from forgeyard.deps import worktrees
from forgeyard.deps.providers.base import (
    MergeMethod,
    MergeResult,
    OpenedPullRequest,
    ProviderError,
    PullRequestDraft,
    PullRequestProvider,
)
from forgeyard.kernel import git

# Pushes refspecs to origin; ``expected`` maps a ref to the commit it must still point at.
Push = Callable[[list[str], dict[str, str]], Awaitable[None]]


class LocalProvider(PullRequestProvider):
    name = "local"

    def __init__(
        self,
        *,
        mirror: Path,
        push: Push,
        base: str,
        head: str,
        head_commit: str | None,
        time_limit: float,
    ) -> None:
        self.mirror = mirror
        self.push = push
        self.base = base
        self.head = head
        self.head_commit = head_commit
        self.time_limit = time_limit

    async def open(self, draft: PullRequestDraft) -> OpenedPullRequest:
        return OpenedPullRequest(number=None, url=None, external_id=None)

    async def merge(
        self, repository: str, number: int, *, method: MergeMethod = "merge", title: str
    ) -> MergeResult:
        """Merges the mirror's ``head`` (fetched by the caller) into ``base``; refuses a
        branch that moved since it was tested."""
        try:
            target = await git.resolve(self.mirror, f"refs/heads/{self.base}")
            head = await git.resolve(self.mirror, f"refs/heads/{self.head}")
        except git.GitError as exc:
            raise ProviderError(f"the branches cannot be read: {exc}", status=409) from None
        if self.head_commit is not None and head != self.head_commit:
            raise ProviderError(
                f"{self.head} moved since it was tested ({self.head_commit[:12]} → {head[:12]})",
                status=409,
            )
        try:
            merged = await self._merge(target, head, title)
            await self.push(
                [f"{merged}:refs/heads/{self.base}"], {f"refs/heads/{self.base}": target}
            )
        except worktrees.MergeConflictError as exc:
            raise ProviderError(
                f"{self.head} no longer merges cleanly into {self.base}: {exc}", status=409
            ) from None
        except git.GitError as exc:
            raise ProviderError(
                f"the merge of {self.head} into {self.base} could not be pushed: {exc}",
                status=409,
                retryable=True,
            ) from None
        return MergeResult(sha=merged)

    async def _merge(self, target: str, head: str, title: str) -> str:
        async with worktrees.worktree(self.mirror, target, time_limit=self.time_limit) as tree:
            return await worktrees.merge(tree, head, title)

    async def close(self, repository: str, number: int) -> None:
        return None

    async def comment(self, repository: str, number: int, body: str) -> None:
        return None
