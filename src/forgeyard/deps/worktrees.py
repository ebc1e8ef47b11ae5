"""Git work trees of a repository's mirror, where scans read and update jobs change files.

A work tree shares the mirror's objects, so checking one out costs only its files, and a
commit made in it is already in the mirror, ready to push. Each lives in a temporary folder
of its own and is removed (with git's record of it) whatever happens inside.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from forgeyard.kernel import git

AUTHOR = {
    "GIT_AUTHOR_NAME": "Forgeyard",
    "GIT_AUTHOR_EMAIL": "forgeyard@localhost",
    "GIT_COMMITTER_NAME": "Forgeyard",
    "GIT_COMMITTER_EMAIL": "forgeyard@localhost",
}


@contextlib.asynccontextmanager
async def worktree(mirror: Path, commit: str, *, time_limit: float) -> AsyncIterator[Path]:
    """A detached work tree of ``commit``; yields its folder."""
    parent = Path(tempfile.mkdtemp(prefix="forgeyard-tree-"))
    path = parent / "tree"
    try:
        await git.run_git(
            "worktree", "add", "--detach", str(path), commit, cwd=mirror, time_limit=time_limit
        )
        yield path
    finally:
        with contextlib.suppress(git.GitError):
            await git.run_git("worktree", "remove", "--force", str(path), cwd=mirror)
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(git.GitError):
            await git.run_git("worktree", "prune", cwd=mirror)


async def commit_paths(tree: Path, paths: list[str], message: str) -> str:
    """Commit the changes to ``paths`` (and nothing else in ``tree``) as Forgeyard; returns
    the new commit."""
    await git.run_git("add", "--", *paths, cwd=tree)
    await git.run_git("commit", "--no-verify", "--quiet", "-m", message, cwd=tree, env=AUTHOR)
    return await git.resolve(tree, "HEAD")


@dataclass(frozen=True)
class FileChange:
    path: str
    additions: int
    deletions: int


async def changes(tree: Path, base: str, head: str = "HEAD") -> list[FileChange]:
    """What ``head`` changed since ``base``, file by file (binary files count 0 lines)."""
    out = await git.run_git("diff", "--numstat", "--no-renames", base, head, cwd=tree)
    found = []
    for line in out.decode(errors="replace").splitlines():
        added, deleted, path = line.split("\t", 2)
        found.append(
            FileChange(
                path=path,
                additions=int(added) if added.isdigit() else 0,
                deletions=int(deleted) if deleted.isdigit() else 0,
            )
        )
    return found


async def export(tree: Path, destination: Path) -> Path:
    """The files of ``tree``'s index (its last commit) copied under ``destination``, with no
    ``.git``: code run there cannot reach the repository's mirror or its configuration."""
    await git.run_git("checkout-index", "--all", f"--prefix={destination}/", cwd=tree)
    return destination


class MergeConflictError(Exception):
    """The change no longer merges cleanly into the target branch."""


async def merge(tree: Path, head: str, message: str) -> str:
    """Merge ``head`` into the work tree's commit (a merge commit even when it could fast-
    forward, so the branch's history shows the pull request); returns the merge commit."""
    try:
        await git.run_git(
            "merge", "--no-ff", "--no-edit", "-m", message, head, cwd=tree, env=AUTHOR
        )
    except git.GitError as exc:
        with contextlib.suppress(git.GitError):
            await git.run_git("merge", "--abort", cwd=tree)
        raise MergeConflictError(exc.stderr or str(exc)) from None
    return await git.resolve(tree, "HEAD")
