"""Running one step: its commands as one shell script, in its own process group.

The script runs under ``/bin/sh -e`` (the first failing command ends it) with exactly the
environment it is given, its standard output and error merged into one pipe read line by line.
A timeout or a halt (the build was cancelled, lost, or the runner is stopping) ends the whole
process group: SIGTERM, then SIGKILL after the grace period. When the script ends by itself,
whatever it left running in its group goes too, so nothing of a step outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from forgeyard.runner.logs import LineSplitter

SHELL = "/bin/sh"
DRAIN_SECONDS = 2.0  # for output still in the pipe once the step's group is gone
_CHUNK = 64 * 1024
_SHELL_SIGNAL_BASE = 128  # a shell reports death by signal N as exit status 128 + N

Ending = Literal["exited", "timed_out", "halted"]


@dataclass(frozen=True)
class StepOutcome:
    status: Literal["succeeded", "failed", "timed_out", "cancelled"]
    exit_code: int | None  # None when the runner ended it


async def run_script(
    commands: tuple[str, ...] | list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    time_limit: float,
    grace_seconds: float,
    halt: asyncio.Event,
    on_line: Callable[[str], None],
) -> StepOutcome:
    """Run ``commands`` as one script for at most ``time_limit`` seconds; ``on_line`` gets
    each line of output as it comes."""
    read_fd, write_fd = os.pipe()
    # Our own pipe rather than asyncio's: asyncio's wait() also waits until every holder of
    # the pipe closes it, and a `server &` the step started would hold it open.
    try:
        process = await asyncio.create_subprocess_exec(
            SHELL,
            "-e",
            "-c",
            "\n".join(commands),
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: ending it ends its children
        )
    except OSError as exc:
        os.close(read_fd)
        on_line(f"the step could not start: {exc}")
        return StepOutcome("failed", None)
    finally:
        os.close(write_fd)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    reader = asyncio.create_task(_read_lines(pipe, on_line))
    try:
        ending = await _wait(process, time_limit, halt)
        if ending != "exited":
            await _end_group(process, grace_seconds)
        _signal_group(process.pid, signal.SIGKILL)  # what it left running goes with it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_SECONDS)
    finally:
        if process.returncode is None:  # we are being cancelled ourselves
            _signal_group(process.pid, signal.SIGKILL)
        if not reader.done():  # a process that left the group still holds the pipe
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        pipe.close()  # already closed unless the reader never started
    return _outcome(ending, process.returncode)


def _outcome(ending: Ending, returncode: int | None) -> StepOutcome:
    if ending == "timed_out":
        return StepOutcome("timed_out", None)
    if ending == "halted":
        return StepOutcome("cancelled", None)
    assert returncode is not None
    code = returncode if returncode >= 0 else _SHELL_SIGNAL_BASE - returncode
    return StepOutcome("succeeded" if code == 0 else "failed", code)


async def _wait(
    process: asyncio.subprocess.Process, time_limit: float, halt: asyncio.Event
) -> Ending:
    exited = asyncio.ensure_future(process.wait())
    halted = asyncio.ensure_future(halt.wait())
    try:
        done, _ = await asyncio.wait(
            {exited, halted}, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        exited.cancel()
        halted.cancel()
    if exited in done:
        return "exited"
    return "halted" if halted in done else "timed_out"


async def _end_group(process: asyncio.subprocess.Process, grace_seconds: float) -> None:
    """SIGTERM to the whole group, SIGKILL to it once the script is gone or the grace ends."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), grace_seconds)
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def _read_lines(pipe: BinaryIO, on_line: Callable[[str], None]) -> None:
    """Reads the pipe to its end, however much is cut or dropped later: a step blocked on a
    full pipe would never end."""
    stream = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)
    splitter = LineSplitter()
    try:
        while chunk := await stream.read(_CHUNK):
            for line in splitter.feed(chunk):
                on_line(line)
        for line in splitter.finish():
            on_line(line)
    finally:
        transport.close()
