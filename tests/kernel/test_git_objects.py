"""Lookups through one ``git cat-file --batch``, against real repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from forgeyard.kernel import git
from forgeyard.kernel.git_objects import ObjectReader
from tests.kernel.test_git import make_repository


def _git(path: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return done.stdout.decode().strip()


def _git_processes() -> set[str]:
    done = subprocess.run(["pgrep", "-f", "git cat-file --batch"], capture_output=True)
    return set(done.stdout.decode().split())


async def test_a_ref_then_files_at_its_commit(tmp_path: Path) -> None:
    files = {"app.py": "print('hi')\n", "my dir/with space.yml": "steps: []\n"}
    make_repository(tmp_path / "origin", files)
    before = _git_processes()
    async with ObjectReader(tmp_path / "origin") as objects:
        commit = await objects.commit("main")
        assert commit == _git(tmp_path / "origin", "rev-parse", "main")
        assert await objects.commit(commit) == commit
        assert await objects.blob(commit, "app.py") == b"print('hi')\n"
        assert await objects.blob(commit, "my dir/with space.yml") == b"steps: []\n"
        assert await objects.blob(commit, "link") == b"app.py"  # a link's target, not followed
        assert await objects.blob(commit, "missing.yml") is None
        assert await objects.blob(commit, "my dir") is None  # a folder is not a file
    assert _git_processes() <= before, "git is waited for when the block ends"


async def test_what_it_cannot_find_or_read_is_a_git_error(tmp_path: Path) -> None:
    make_repository(tmp_path / "origin", {"a.txt": "a"})
    async with ObjectReader(tmp_path / "origin") as objects:
        with pytest.raises(git.GitError, match="names no commit"):
            await objects.commit("no-such-branch")
        blob = _git(tmp_path / "origin", "rev-parse", "main:a.txt")
        with pytest.raises(git.GitError, match="names no commit"):
            await objects.commit(blob)  # an object, but not a commit
        with pytest.raises(git.GitError, match="not an object name"):
            await objects.blob("main", "a\nmain:a.txt")
        assert await objects.blob("main", "a.txt") == b"a", "still answering after refusals"
    async with ObjectReader(tmp_path / "nowhere") as objects:
        with pytest.raises(git.GitError, match="could not start"):
            await objects.commit("main")
    (tmp_path / "plain").mkdir()
    async with ObjectReader(tmp_path / "plain") as objects:
        with pytest.raises(git.GitError, match="stopped answering"):
            await objects.commit("main")
        with pytest.raises(git.GitError, match="earlier failure"):
            await objects.blob("main", "a.txt")
