"""The git wrapper against real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from forgeyard.kernel import git


def make_repository(path: Path, files: dict[str, str]) -> None:
    path.mkdir(parents=True)

    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    run("init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / "link").symlink_to("app.py")
    run("add", "-A")
    run("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "first")


def blob_of(text: str) -> str:
    return (
        subprocess.run(
            ["git", "hash-object", "--stdin"], input=text.encode(), capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )


async def test_a_mirror_lists_each_file_with_the_id_of_its_content(tmp_path: Path) -> None:
    files = {"app.py": "print('hi')\n", "pkg/util.py": "x = 1\n"}
    make_repository(tmp_path / "origin", files)
    mirror = tmp_path / "mirrors" / "origin.git"
    await git.mirror(str(tmp_path / "origin"), mirror)
    await git.mirror(str(tmp_path / "origin"), mirror)  # a second time fetches
    commit = await git.resolve(mirror, "main")
    assert len(commit) == 40
    assert await git.default_branch(mirror) == "main"
    entries = await git.list_files(mirror, commit)
    assert {(e.path, e.blob, e.size) for e in entries} == {
        (name, blob_of(text), len(text)) for name, text in files.items()
    }, "symbolic links are left out"


async def test_failures_say_what_git_said(tmp_path: Path) -> None:
    make_repository(tmp_path / "origin", {"a.txt": "a"})
    with pytest.raises(git.GitError, match="failed") as caught:
        await git.resolve(tmp_path / "origin", "no-such-branch")
    assert caught.value.returncode != 0
    with pytest.raises(git.GitError, match="is not a ref"):
        await git.resolve(tmp_path / "origin", "--output=/tmp/x")


async def test_git_runs_without_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEYARD_SECRET_KEY", "do-not-leak")
    out = await git.run_git("-c", "alias.environment=!env", "environment", cwd=tmp_path)
    assert b"do-not-leak" not in out
    assert b"GIT_TERMINAL_PROMPT=0" in out


async def test_a_git_that_hangs_is_stopped(tmp_path: Path) -> None:
    make_repository(tmp_path / "origin", {"a.txt": "a"})
    with pytest.raises(git.GitTimeoutError, match="was stopped"):
        # An alias is all a repository's config needs to make git run a program.
        await git.run_git(
            "-c", "alias.wait=!sleep 30", "wait", cwd=tmp_path / "origin", time_limit=0.5
        )
