"""The ``git`` command line, through one async wrapper.

Repositories are untrusted, and so is what they make git do (hooks, filters, a config that
points at a program). Every call therefore runs with a scrubbed environment (no server
secrets, no user or system git config, no prompts), a time limit after which the process
group is killed, and a cap on the output kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIME_LIMIT_SECONDS = 120.0
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
# What git needs to find itself and speak plainly; nothing of the server's own environment.
_PASSED_THROUGH = ("PATH", "SYSTEMROOT", "TMPDIR")


class GitError(Exception):
    """git failed; ``stderr`` holds the end of what it said."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class GitTimeoutError(GitError):
    pass


@dataclass(frozen=True)
class TreeEntry:
    path: str
    blob: str  # the object id of the file's content: equal ids, equal content
    mode: str
    size: int


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update(
        {
            "HOME": os.devnull,
            "LANG": "C",
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
        }
    )
    env.update(extra or {})
    return env


async def run_git(
    *args: str,
    cwd: Path | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Run ``git args…`` and return its standard output; raise :class:`GitError` on failure."""
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=git_environment(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout kills helpers too
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), time_limit)
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        raise GitTimeoutError(f"git {args[0]} ran past {time_limit:g} s and was stopped") from None
    if len(stdout) > MAX_OUTPUT_BYTES:
        raise GitError(f"git {args[0]} wrote more than {MAX_OUTPUT_BYTES} bytes")
    if process.returncode != 0:
        said = stderr.decode(errors="replace").strip()[-2000:]
        raise GitError(
            f"git {args[0]} failed: {said or 'no message'}",
            returncode=process.returncode,
            stderr=said,
        )
    return stdout


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def mirror(url: str, destination: Path, *, time_limit: float = 600.0) -> None:
    """A bare mirror of ``url`` at ``destination``, created or brought up to date."""
    if (destination / "HEAD").exists():
        await run_git("remote", "update", "--prune", cwd=destination, time_limit=time_limit)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    await run_git("clone", "--mirror", "--", url, str(destination), time_limit=time_limit)


async def resolve(repository: Path, ref: str = "HEAD") -> str:
    """The commit id ``ref`` names."""
    if ref.startswith("-"):
        raise GitError(f"{ref!r} is not a ref")
    out = await run_git(
        "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}", cwd=repository
    )
    return out.decode().strip()


async def default_branch(repository: Path) -> str | None:
    try:
        out = await run_git("symbolic-ref", "--short", "HEAD", cwd=repository)
    except GitError:
        return None
    return out.decode().strip() or None


async def list_files(repository: Path, commit: str) -> list[TreeEntry]:
    """Every file of ``commit`` with its blob id and size (symbolic links and submodules are
    left out: they are not content to analyse)."""
    out = await run_git("ls-tree", "-r", "-l", "-z", "--full-tree", commit, cwd=repository)
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, blob, size = meta.split()
        if kind != b"blob" or mode == b"120000":
            continue
        entries.append(
            TreeEntry(
                path.decode(errors="surrogateescape"), blob.decode(), mode.decode(), int(size)
            )
        )
    return entries
