"""A step's output on its way to the server: split into lines, numbered, batched and capped.

Reading a step's output must never wait for the network (a full pipe stalls the step), so the
reader only queues lines and one sender task per step sends them: a batch leaves
``FLUSH_SECONDS`` after its first line, or as soon as it holds ``BATCH_LINES``; what queued
up meanwhile behind a slow server goes in one batch, up to the protocol's limit. The build's log
is capped at ``spec.max_log_bytes``: past it, one last line says so and the rest is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

from forgeyard.protocol.runner import MAX_LOG_LINE_CHARS, MAX_LOG_LINES_PER_BATCH, LogBatch

FLUSH_SECONDS = 0.1
BATCH_LINES = 1000  # a batch this full leaves without waiting for the flush delay
BATCH_CHARS = 1024 * 1024  # keeps one request small even when every line is long
TRUNCATION_NOTICE = "[log truncated: the build's log passed {limit} bytes]"
_MAX_UTF8_BYTES_PER_CHAR = 4

# Sends one batch; handles its own failures (a log lost is not a reason to stop a build).
SendBatch = Callable[[LogBatch], Awaitable[None]]


class LineSplitter:
    """Output bytes in, complete lines out (without their line ending), UTF-8 decoded with
    replacement characters. Only the start of an overlong line is held, never all of it."""

    def __init__(self, max_chars: int = MAX_LOG_LINE_CHARS) -> None:
        self._max_bytes = max_chars * _MAX_UTF8_BYTES_PER_CHAR
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        lines = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._hold(chunk[start:end])
            lines.append(self._take())
            start = end + 1
        self._hold(chunk[start:])
        return lines

    def finish(self) -> list[str]:
        """The last line, when the output did not end with a line ending."""
        return [self._take()] if self._pending else []

    def _hold(self, part: bytes) -> None:
        room = self._max_bytes - len(self._pending)
        if room > 0:
            self._pending += part[:room]

    def _take(self) -> str:
        line = bytes(self._pending).removesuffix(b"\r").decode("utf-8", errors="replace")
        self._pending.clear()
        return line


class LogBudget:
    """The bytes of log a build may still send, shared by its steps (counted as the server
    counts them: each line's UTF-8 bytes plus its line ending)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.exhausted = False

    def admit(self, line: str) -> str | None:
        """What to send for ``line``: itself while the budget lasts, the truncation notice
        for the first line past it, nothing after that."""
        if self.exhausted:
            return None
        size = len(line.encode()) + 1
        if self.used + size > self.limit:
            self.exhausted = True
            return TRUNCATION_NOTICE.format(limit=self.limit)
        self.used += size
        return line


class StepLog:
    """One step's lines, numbered from 0 and sent in batches. Use as an async context
    manager: leaving it sends what is still queued."""

    def __init__(
        self,
        step: int,
        send: SendBatch,
        budget: LogBudget,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        batch_lines: int = BATCH_LINES,
    ) -> None:
        self.step = step
        self.truncated = False  # a line of this step was dropped by the build's log cap
        self._send = send
        self._budget = budget
        self._flush_seconds = flush_seconds
        self._batch_lines = batch_lines
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()  # None: no more lines
        self._next_line = 0
        self._sender: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StepLog:
        self._sender = asyncio.create_task(self._send_batches())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._sender is not None
        if exc is not None:  # the step is being abandoned: nothing more is sent about it
            self._sender.cancel()
        self._queue.put_nowait(None)
        try:
            await self._sender
        except asyncio.CancelledError:
            if exc is None:
                raise

    def write(self, line: str) -> None:
        """Queue one line (cut to the protocol's length); never waits."""
        admitted = self._budget.admit(line[:MAX_LOG_LINE_CHARS])
        if self._budget.exhausted:
            self.truncated = True
        if admitted is not None:
            self._queue.put_nowait(admitted)

    async def _send_batches(self) -> None:
        ended = False
        while not ended:
            first = await self._queue.get()
            if first is None:
                return
            lines, ended = await self._gather(first)
            await self._send(LogBatch(step=self.step, first_line=self._next_line, lines=lines))
            self._next_line += len(lines)

    async def _gather(self, first: str) -> tuple[list[str], bool]:
        """``first`` and the lines that follow it within the flush delay, until the batch
        holds ``batch_lines``; lines already queued behind a slow server join it, up to the
        protocol's limit. And whether the end of the step's output was reached."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_seconds
        lines, size = [first], len(first)
        while len(lines) < MAX_LOG_LINES_PER_BATCH and size < BATCH_CHARS:
            try:
                line = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0 or len(lines) >= self._batch_lines:
                    break
                try:
                    line = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if line is None:
                return lines, True
            lines.append(line)
            size += len(line)
        return lines, False
