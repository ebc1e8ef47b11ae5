"""The ``git`` command line, through one async wrapper.

Repositories are untrusted, and so is what they make git do (hooks, filters, a config that
points at a program). Every call therefore runs with a scrubbed environment (no server
secrets, no user or system git config, no prompts), a time limit after which the process
group is killed, and a cap on the output kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIME_LIMIT_SECONDS = 120.0
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_BLOB_CHUNK = 1024 * 1024
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


_BAD_REF = re.compile(r"(^[-/.])|(\.\.)|(@\{)|(//)|([\x00-\x20\x7f~^:?*\[\\])|([/.]$)|(\.lock$)")


def check_ref_name(value: str) -> str:
    """``value`` if git could take it as a branch, tag or commit name (the rules of
    ``git check-ref-format``, and no leading dash that would read as an option)."""
    if not value or len(value) > 255 or _BAD_REF.search(value):
        raise ValueError(f"{value!r} is not a valid git ref")
    return value


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
        kill_group(process.pid)
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


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def mirror(
    url: str,
    destination: Path,
    *,
    time_limit: float = 600.0,
    env: Mapping[str, str] | None = None,
) -> None:
    """A bare mirror of ``url`` at ``destination``, created or brought up to date.

    One fetch at a time per mirror (a lock file beside it: a registration's first fetch and
    an analysis's may start together), and a first clone lands under a temporary name that is
    renamed into place only when complete. ``env`` carries what the fetch needs and the mirror
    must not keep (an Authorization header as ``GIT_CONFIG_*`` variables, the protocols).
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    async with _locked(destination.with_name(destination.name + ".lock"), time_limit):
        if (destination / "HEAD").exists():
            await run_git(
                "remote", "update", "--prune", cwd=destination, time_limit=time_limit, env=env
            )
            return
        partial = destination.with_name(destination.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            await run_git(
                "clone", "--mirror", "--", url, str(partial), time_limit=time_limit, env=env
            )
            partial.rename(destination)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


@contextlib.asynccontextmanager
async def _locked(path: Path, time_limit: float) -> AsyncIterator[None]:
    """An exclusive lock on ``path`` (flock: held by this process, freed if it dies)."""
    deadline = time.monotonic() + time_limit
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise GitTimeoutError(
                        f"{path.name} stayed locked past {time_limit:g} s"
                    ) from None
                await asyncio.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def config_env(settings: Mapping[str, str]) -> dict[str, str]:
    """``git -c`` settings as environment variables: never on a command line ``ps`` shows."""
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for index, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


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


async def init_bare(repository: Path, *, branch: str = "main") -> None:
    """An empty bare repository at ``repository`` (nothing happens if one is there).

    No template is copied, so it starts without even git's sample hooks; git makes the
    folder and its parents.
    """
    if (repository / "HEAD").is_file():
        return
    await run_git(
        "init",
        "--bare",
        "--quiet",
        "--template=",
        f"--initial-branch={branch}",
        "--",
        str(repository),
    )


async def list_refs(repository: Path) -> dict[str, str]:
    """Every ref of ``repository`` (``refs/heads/main``, tags, …) and the object it names."""
    out = await run_git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repository)
    refs = {}
    for line in out.decode().splitlines():
        object_id, _, name = line.partition(" ")
        refs[name] = object_id
    return refs


async def branches(repository: Path) -> list[str]:
    out = await run_git("for-each-ref", "--format=%(refname:short)", "refs/heads/", cwd=repository)
    return out.decode().split()


async def set_default_branch(repository: Path, branch: str) -> None:
    await run_git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=repository)


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


async def write_blobs(
    repository: Path,
    entries: Sequence[TreeEntry],
    destination: Path,
    *,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> None:
    """Write the content of ``entries`` under ``destination`` at their paths.

    One ``git cat-file --batch`` streams every blob straight to its file, so a thousand files
    cost one process, memory stays flat whatever the repository weighs, and only the files
    asked for are written (an incremental analysis needs few of them).
    """
    if not entries:
        return
    process = await asyncio.create_subprocess_exec(
        "git",
        "cat-file",
        "--batch",
        cwd=repository,
        env=git_environment(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        limit=_BLOB_CHUNK,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    request = b"".join(entry.blob.encode() + b"\n" for entry in entries)
    feeding = asyncio.create_task(_feed_and_close(process.stdin, request))
    try:
        await asyncio.wait_for(_copy_blobs(process.stdout, entries, destination), time_limit)
        await feeding
    except TimeoutError:
        raise GitTimeoutError(f"git cat-file ran past {time_limit:g} s and was stopped") from None
    finally:
        feeding.cancel()
        if process.returncode is None:
            kill_group(process.pid)
        await process.wait()


async def _feed_and_close(stdin: asyncio.StreamWriter, request: bytes) -> None:
    stdin.write(request)
    with contextlib.suppress(ConnectionError):
        await stdin.drain()
        stdin.close()


async def _copy_blobs(
    stdout: asyncio.StreamReader, entries: Sequence[TreeEntry], destination: Path
) -> None:
    for entry in entries:
        header = (await stdout.readline()).split()
        if len(header) != 3 or header[1] != b"blob":
            raise GitError(f"blob {entry.blob} of {entry.path} is missing")
        remaining = int(header[2])
        target = _inside(destination, entry.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            while remaining:
                chunk = await stdout.read(min(remaining, _BLOB_CHUNK))
                if not chunk:
                    raise GitError(f"git cat-file stopped inside blob {entry.blob}")
                handle.write(chunk)
                remaining -= len(chunk)
        await stdout.readexactly(1)  # the newline after each blob's content


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing a path that would land outside ``root``."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise GitError(f"path {relative!r} leaves the checkout")
    return target


async def commit_directory(
    repository: Path,
    source: Path,
    *,
    branch: str,
    message: str,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> str:
    """Commit every file under ``source`` as the whole tree of ``branch`` in the bare
    ``repository`` (created if missing); return the new commit id."""
    await init_bare(repository, branch=branch)
    index = repository / "forgeyard-import.index"
    env = {
        "GIT_DIR": str(repository),
        "GIT_WORK_TREE": str(source),
        "GIT_INDEX_FILE": str(index),
        "GIT_AUTHOR_NAME": "Forgeyard",
        "GIT_AUTHOR_EMAIL": "forgeyard@localhost",
        "GIT_COMMITTER_NAME": "Forgeyard",
        "GIT_COMMITTER_EMAIL": "forgeyard@localhost",
    }
    try:
        await run_git("add", "--all", "--force", ".", cwd=source, env=env, time_limit=time_limit)
        tree = (await run_git("write-tree", cwd=source, env=env)).decode().strip()
        commit = (
            (await run_git("commit-tree", tree, "-m", message, cwd=source, env=env))
            .decode()
            .strip()
        )
        await run_git("update-ref", f"refs/heads/{branch}", commit, cwd=source, env=env)
        await run_git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=source, env=env)
    finally:
        index.unlink(missing_ok=True)
    return commit
