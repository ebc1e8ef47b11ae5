"""Runs detectors over files in time-limited worker subprocesses, in parallel.

Repository code is untrusted, and so are the tools' reactions to it (a parser that loops, a
plugin that reads the environment). Every detector therefore runs in a worker subprocess
(:mod:`forgeyard.analysis.detector_worker`) that has a scrubbed environment (nothing of the
server's: no ``FORGEYARD_*`` secrets), its own process group, which is killed whole when a
detector runs past its time limit, and a cap on what it may send back.

A pool of ``processes`` workers lives for one :func:`run_detectors` call and serves every
detector in turn, so the tools are imported once per analysis, not once per detector. Each
detector's files are split across the workers in chunks of balanced total size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson

from forgeyard.analysis.detector_worker import HEADER, frame
from forgeyard.analysis.detectors.base import Detector, FileRef, FileReport

MAX_REPLY_BYTES = 512 * 1024 * 1024
STDERR_TAIL_BYTES = 16 * 1024
CLOSE_GRACE_SECONDS = 5.0
# All a worker gets from the server's environment: where programs and temporary files are.
_PASSED_THROUGH = ("PATH", "TMPDIR")


class DetectorError(Exception):
    """A detector's worker crashed, failed or ran past its time limit."""

    def __init__(self, detector: str, reason: str) -> None:
        super().__init__(f"detector {detector}: {reason}")
        self.detector = detector
        self.reason = reason


def worker_environment() -> dict[str, str]:
    """The whole environment a worker starts with."""
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update({"LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def worker_command() -> list[str]:
    # -P: the working directory is not put on sys.path, so no file of the analysed tree can
    # stand in for a module the worker imports.
    return [sys.executable, "-P", "-m", "forgeyard.analysis.detector_worker"]


def balanced_chunks(files: Sequence[FileRef], count: int) -> list[list[FileRef]]:
    """``files`` split into at most ``count`` non-empty chunks of nearly equal total size:
    largest first, each to the lightest chunk so far."""
    chunks: list[list[FileRef]] = [[] for _ in range(max(count, 1))]
    loads = [0] * len(chunks)
    for file in sorted(files, key=lambda f: (-f.size, f.path)):
        lightest = loads.index(min(loads))
        chunks[lightest].append(file)
        loads[lightest] += file.size + 1  # +1: an empty file still costs something
    return [chunk for chunk in chunks if chunk]


class _Worker:
    """One worker subprocess and the tail of what it said on standard error."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._stderr: deque[bytes] = deque()
        self._drain = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            *worker_command(),
            cwd=os.sep,  # not the analysed tree: nothing there is read by accident
            env=worker_environment(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill takes ruff along
        )
        return cls(process)

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        kept = 0
        while chunk := await self.process.stderr.read(4096):
            self._stderr.append(chunk)
            kept += len(chunk)
            while kept - len(self._stderr[0]) >= STDERR_TAIL_BYTES:
                kept -= len(self._stderr.popleft())

    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode(errors="replace").strip()[-2000:]

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(frame(orjson.dumps(payload)))
        await self.process.stdin.drain()
        header = await self.process.stdout.readexactly(HEADER.size)
        (length,) = HEADER.unpack(header)
        if length > MAX_REPLY_BYTES:
            raise _OutputTooLargeError(length)
        reply: dict[str, Any] = orjson.loads(await self.process.stdout.readexactly(length))
        return reply

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Ask the worker to exit (its input ends); kill its group if it does not."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), CLOSE_GRACE_SECONDS)
        self.kill()  # helpers it left behind go too
        await self.process.wait()
        with contextlib.suppress(Exception):
            await self._drain


class _OutputTooLargeError(Exception):
    pass


async def _all_or_first_error(
    calls: Sequence[Coroutine[Any, Any, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Every call's result; at the first failure the other calls are cancelled (their
    workers are killed by the caller) and that failure is raised."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
    return [task.result() for task in tasks]


async def run_detectors(
    *,
    root: Path,
    files: Sequence[FileRef],
    detectors: Sequence[Detector],
    processes: int = 2,
    time_limit: float,
    on_detector: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, dict[str, FileReport]]:
    """Every detector's reports (detector name → path → report) for the ``files`` it
    applies to; the files are on disk under ``root``.

    Detectors run one after another (``on_detector(name)`` is awaited before each, for
    progress stages), each split across ``processes`` workers; ``time_limit`` bounds each
    detector. Raises :class:`DetectorError` if a worker fails; all workers are then killed.
    """
    root = await asyncio.to_thread(root.resolve)
    results: dict[str, dict[str, FileReport]] = {}
    workers: list[_Worker] = []
    try:
        for detector in detectors:
            if on_detector is not None:
                await on_detector(detector.name)
            chosen = [file for file in files if detector.applies_to(file.path)]
            chunks = balanced_chunks(chosen, processes)
            while len(workers) < len(chunks):
                workers.append(await _Worker.start())
            results[detector.name] = await _run_one(root, detector, chunks, workers, time_limit)
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    finally:
        await asyncio.gather(*(worker.close() for worker in workers))
    return results


async def _run_one(
    root: Path,
    detector: Detector,
    chunks: list[list[FileRef]],
    workers: list[_Worker],
    time_limit: float,
) -> dict[str, FileReport]:
    async def ask(worker: _Worker, chunk: list[FileRef]) -> dict[str, Any]:
        payload = {
            "detector": detector.name,
            "root": str(root),
            "paths": [file.path for file in chunk],
        }
        try:
            return await asyncio.wait_for(worker.request(payload), time_limit)
        except TimeoutError:
            worker.kill()
            raise DetectorError(
                detector.name, f"ran past its time limit of {time_limit:g} s and was stopped"
            ) from None
        except _OutputTooLargeError as exc:
            worker.kill()
            raise DetectorError(
                detector.name, f"answered {exc.args[0]} bytes, over {MAX_REPLY_BYTES}"
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, orjson.JSONDecodeError):
            worker.kill()
            await worker.process.wait()
            raise DetectorError(
                detector.name,
                f"worker exited with {worker.process.returncode}: "
                f"{worker.stderr_tail() or 'no message'}",
            ) from None

    replies = await _all_or_first_error(
        [ask(worker, chunk) for worker, chunk in zip(workers, chunks, strict=False)]
    )
    reports: dict[str, FileReport] = {}
    for reply in replies:
        if "error" in reply:
            raise DetectorError(detector.name, str(reply["error"]))
        for path, report in reply["reports"].items():
            reports[path] = FileReport.from_dict(report)
    return reports
