"""Running an untrusted command: a time limit, a scrubbed environment, capped output.

What a repository asks us to run (its install, its tests) is untrusted. :func:`run_limited`
starts it in its own session, so its process group holds everything it spawns; when the time
limit passes, or the caller is cancelled, the whole group is ended (SIGTERM, then SIGKILL
after a short grace), and whatever it left running once it exits goes too. Only the last
``max_output_bytes`` of its output are kept. :func:`scrubbed_env` is the environment to give
it: nothing of the server's own (no ``FORGEYARD_*`` secret, no database URL) reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
TERM_GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL
DRAIN_GRACE_SECONDS = 2.0  # for output still buffered once the command has ended
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Completed:
    """How a command ended. ``returncode`` is None when it was killed (time limit)."""

    argv: tuple[str, ...]
    returncode: int | None
    timed_out: bool
    output: str  # standard output and error as they came, the tail when ``truncated``
    truncated: bool
    duration_seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def scrubbed_env(extra: Mapping[str, str] | None = None, *, home: Path) -> dict[str, str]:
    """An environment made from nothing of the server's: a safe ``PATH``, ``HOME`` at
    ``home``, a UTF-8 C locale and ``TMPDIR`` inside ``home`` (created), then ``extra``
    (which may replace any of them, ``PATH`` included)."""
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": SAFE_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(tmp),
    }
    env.update(extra or {})
    return env


async def run_limited(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    time_limit: float,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
) -> Completed:
    """Run ``argv`` in ``cwd`` with exactly ``env``, no input, for at most ``time_limit``
    seconds; never raises for the command's failure (a missing program included: that is
    exit code 127, as a shell would say)."""
    started = time.monotonic()
    # Our own pipe rather than asyncio's: asyncio's wait() also waits for every holder of
    # the pipe to close it, and a `server &` the command left behind would hold it open.
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its children along
        )
    except OSError as exc:  # no such program, not executable, cwd missing
        os.close(read_fd)
        return Completed(tuple(argv), 127, False, f"{argv[0]}: {exc}\n", False, 0.0)
    finally:
        os.close(write_fd)
    tail = _Tail(max_output_bytes)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    reader = asyncio.create_task(tail.drain(pipe))
    timed_out = False
    swept = False
    try:
        try:
            await asyncio.wait_for(process.wait(), time_limit)
        except TimeoutError:
            timed_out = True
            await _end_group(process)
        # It has exited; what it left running in its group (a `cmd &`) goes with it.
        _signal_group(process.pid, signal.SIGKILL)
        swept = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_GRACE_SECONDS)
    except asyncio.CancelledError:  # the caller gave up: nothing of it may outlive the call
        await _end_group(process)
        raise
    finally:
        if not swept:  # cancelled again during the grace, or an error of our own
            _signal_group(process.pid, signal.SIGKILL)
        if not reader.done():  # something outside the group still holds the pipe open
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        pipe.close()  # already closed unless the reader never started
    return Completed(
        argv=tuple(argv),
        returncode=None if timed_out else process.returncode,
        timed_out=timed_out,
        output=tail.text(),
        truncated=tail.truncated,
        duration_seconds=time.monotonic() - started,
    )


async def _end_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the whole group, then SIGKILL to what is left of it after the grace."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), TERM_GRACE_SECONDS)
    _signal_group(process.pid, signal.SIGKILL)  # the leader, and whatever ignored SIGTERM
    await process.wait()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class _Tail:
    """The last ``limit`` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.buffer = bytearray()
        self.truncated = False

    async def drain(self, pipe: BinaryIO) -> None:
        """Reads ``pipe`` to its end (or until cancelled), then closes it."""
        stream = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), pipe
        )
        try:
            while chunk := await stream.read(_CHUNK):
                self.buffer += chunk
                if len(self.buffer) > self.limit:
                    del self.buffer[: len(self.buffer) - self.limit]
                    self.truncated = True
        finally:
            transport.close()

    def text(self) -> str:
        return self.buffer.decode(errors="replace")
