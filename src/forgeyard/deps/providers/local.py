"""The ``local`` provider: the pull request lives in Forgeyard; merging it is a real git merge
of the branch into the target branch, pushed to the repository's origin."""

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

Push = Callable[[list[str]], Awaitable[None]]


class LocalProvider(PullRequestProvider):
    name = "local"

    def __init__(
        self, *, mirror: Path, push: Push, base: str, head: str, time_limit: float
    ) -> None:
        self.mirror = mirror
        self.push = push
        self.base = base
        self.head = head
        self.time_limit = time_limit

    async def open(self, draft: PullRequestDraft) -> OpenedPullRequest:
        return OpenedPullRequest(number=None, url=None, external_id=None)

    async def merge(
        self, repository: str, number: int, *, method: MergeMethod = "merge", title: str
    ) -> MergeResult:
        try:
            target = await git.resolve(self.mirror, f"refs/heads/{self.base}")
            head = await git.resolve(self.mirror, f"refs/heads/{self.head}")
        except git.GitError as exc:
            raise ProviderError(f"the branches cannot be read: {exc}", status=409) from None
        async with worktrees.worktree(self.mirror, target, time_limit=self.time_limit) as tree:
            try:
                merged = await worktrees.merge(tree, head, title)
            except worktrees.MergeConflictError as exc:
                raise ProviderError(
                    f"{self.head} no longer merges cleanly into {self.base}: {exc}", status=409
                ) from None
        try:
            await self.push([f"{merged}:refs/heads/{self.base}"])
        except git.GitError as exc:
            raise ProviderError(
                f"origin refused the merge of {self.head} into {self.base}: {exc}",
                status=409,
                retryable=True,
            ) from None
        return MergeResult(sha=merged)

    async def close(self, repository: str, number: int) -> None:
        return None

    async def comment(self, repository: str, number: int, body: str) -> None:
        return None
