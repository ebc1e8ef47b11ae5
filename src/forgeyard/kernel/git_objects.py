"""Several lookups in one repository through a single ``git cat-file --batch``.

Every ``git`` started is a fork of the server, the dearest part of a lookup that git answers
in microseconds. Creating a build resolves a ref, then reads pipeline files at that commit:
one process for all of it instead of one each. The process gets what every git call gets (a
scrubbed environment, its own process group) and each answer a time limit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Self

from forgeyard.kernel.git import (
    MAX_OUTPUT_BYTES,
    GitError,
    GitTimeoutError,
    git_environment,
    kill_group,
)

ANSWER_TIME_LIMIT_SECONDS = 30.0


class ObjectReader:
    """``async with ObjectReader(mirror) as objects``: :meth:`commit`, :meth:`blob`; git
    starts at the first lookup and is waited for when the block ends."""

    def __init__(self, repository: Path, *, time_limit: float = ANSWER_TIME_LIMIT_SECONDS) -> None:
        self._repository = repository
        self._time_limit = time_limit
        self._process: asyncio.subprocess.Process | None = None
        self._stopped = False

    async def __aenter__(self) -> Self:
        return self  # git starts with the first lookup

    async def _start(self) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                "git",
                "cat-file",
                "--batch",
                cwd=self._repository,
                env=git_environment(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:  # no such folder, most likely: the mirror is not made yet
            raise GitError(f"git cat-file could not start: {error.strerror}") from error

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), self._time_limit)
        except TimeoutError:
            kill_group(process.pid)
            await process.wait()

    async def commit(self, revision: str) -> str:
        """The commit id ``revision`` (a ref or an object id) names; GitError if none."""
        found = await self._lookup(f"{revision}^{{commit}}")
        if found is None:
            raise GitError(f"{revision!r} names no commit")
        return found[0]

    async def blob(self, commit: str, path: str) -> bytes | None:
        """The content of the file at ``path`` in ``commit``; None when it is not a file there."""
        found = await self._lookup(f"{commit}:{path}")
        if found is None or found[1] != "blob":
            return None
        return found[2]

    async def _lookup(self, name: str) -> tuple[str, str, bytes] | None:
        """(object id, type, content) of ``name``, or None when git has no such object."""
        if "\n" in name or name.startswith("-"):
            raise GitError(f"{name!r} is not an object name")
        if self._stopped:
            raise GitError("git cat-file was stopped after an earlier failure")
        if self._process is None:
            self._process = await self._start()
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            async with asyncio.timeout(self._time_limit):
                process.stdin.write(name.encode() + b"\n")
                await process.stdin.drain()
                line = await process.stdout.readline()
                header = line.split()
                if line.endswith((b" missing\n", b" ambiguous\n")):
                    return None
                if len(header) != 3 or not header[2].isdigit():
                    self._stop(process)
                    raise GitError("git cat-file stopped answering")
                object_id, kind, size = header[0].decode(), header[1].decode(), int(header[2])
                if size > MAX_OUTPUT_BYTES:
                    self._stop(process)  # its answer is not read, so the next would be wrong
                    raise GitError(f"{name!r} is larger than {MAX_OUTPUT_BYTES} bytes")
                content = await process.stdout.readexactly(size + 1)  # and its newline
        except (BrokenPipeError, ConnectionResetError, asyncio.IncompleteReadError) as error:
            self._stop(process)  # not a repository, or git died
            raise GitError("git cat-file stopped answering") from error
        except TimeoutError:
            self._stop(process)
            raise GitTimeoutError(f"git cat-file took over {self._time_limit:g} s") from None
        return object_id, kind, content[:-1]

    def _stop(self, process: asyncio.subprocess.Process) -> None:
        self._stopped = True
        if process.returncode is None:
            kill_group(process.pid)
