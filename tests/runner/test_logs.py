"""A step's log: lines split and cut to the protocol's length, numbered per step from 0, sent
in batches within the protocol's limits, and capped for the whole build."""

from __future__ import annotations

import asyncio
from pathlib import Path

from forgeyard.kernel.processes import scrubbed_env
from forgeyard.protocol.runner import MAX_LOG_LINE_CHARS, MAX_LOG_LINES_PER_BATCH, LogBatch
from forgeyard.runner.logs import LineSplitter, LogBudget, StepLog
from forgeyard.runner.steps import run_script

PLENTY = 10_000_000


class Received:
    """The batches a step's log sent, in order."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[LogBatch] = []
        self.delay = delay

    async def send(self, batch: LogBatch) -> None:
        await asyncio.sleep(self.delay)
        self.batches.append(batch)

    def lines(self, step: int = 0) -> list[str]:
        return [line for b in self.batches if b.step == step for line in b.lines]


def test_lines_are_split_on_newlines_and_decoded_with_replacement() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\r\n\xff\xfebad\n\n") == ["two", "\ufffd\ufffdbad", ""]
    assert splitter.feed("caf\u00e9 ".encode()) == []
    assert splitter.finish() == ["caf\u00e9 "]
    assert splitter.finish() == []


def test_a_huge_line_is_cut_and_the_next_line_survives() -> None:
    splitter = LineSplitter()
    lines = []
    for _ in range(100):  # 6.4 MB without a line ending, in pieces, as a pipe delivers it
        lines += splitter.feed(b"x" * 64 * 1024)
    lines += splitter.feed(b"\nnext\n")
    assert [len(line) for line in lines] == [4 * MAX_LOG_LINE_CHARS, 4]
    assert lines[1] == "next"


async def test_a_huge_line_reaches_the_server_cut_to_the_protocols_length(
    tmp_path: Path,
) -> None:
    received = Received()
    async with StepLog(0, received.send, LogBudget(PLENTY)) as log:
        outcome = await run_script(
            ["head -c 3000000 /dev/zero | tr '\\0' 'a'", "echo", "echo after"],
            cwd=tmp_path,
            env=scrubbed_env(home=tmp_path / "home"),
            time_limit=60,
            grace_seconds=1,
            halt=asyncio.Event(),
            on_line=log.write,
        )
    assert outcome.status == "succeeded"
    assert received.lines() == ["a" * MAX_LOG_LINE_CHARS, "after"]


async def test_batches_are_numbered_from_zero_without_gaps_and_within_limits() -> None:
    received = Received(delay=0.01)
    async with StepLog(3, received.send, LogBudget(PLENTY)) as log:
        for number in range(12_000):  # all queued at once, as behind a slow server
            log.write(f"line {number}")
    assert received.lines(3) == [f"line {n}" for n in range(12_000)]
    assert len(received.batches) >= 12_000 / MAX_LOG_LINES_PER_BATCH
    expected_first = 0
    for batch in received.batches:
        assert batch.step == 3
        assert batch.first_line == expected_first
        assert 1 <= len(batch.lines) <= MAX_LOG_LINES_PER_BATCH
        expected_first += len(batch.lines)


async def test_a_full_batch_leaves_without_waiting_for_the_flush_delay() -> None:
    received = Received()
    async with StepLog(0, received.send, LogBudget(PLENTY), flush_seconds=3600) as log:
        for number in range(1500):
            log.write(str(number))
            if number % 100 == 0:
                await asyncio.sleep(0)  # the sender runs while lines keep coming
        for _ in range(200):  # up to 10 s, far less than the flush delay
            if received.batches:
                break
            await asyncio.sleep(0.05)
        assert received.batches
        assert len(received.batches[0].lines) >= 1000
    assert received.lines() == [str(n) for n in range(1500)]


async def test_a_few_lines_are_sent_while_the_step_still_runs() -> None:
    received = Received()
    async with StepLog(0, received.send, LogBudget(PLENTY)) as log:
        log.write("first")
        log.write("second")
        for _ in range(200):  # up to 10 s: far beyond the flush delay
            if received.batches:
                break
            await asyncio.sleep(0.05)
        assert [b.lines for b in received.batches] == [["first", "second"]]
    assert len(received.batches) == 1


async def test_a_slow_server_does_not_stall_the_step(tmp_path: Path) -> None:
    received = Received(delay=0.2)
    async with StepLog(0, received.send, LogBudget(PLENTY)) as log:
        outcome = await asyncio.wait_for(
            run_script(
                ["seq 1 20000"],
                cwd=tmp_path,
                env=scrubbed_env(home=tmp_path / "home"),
                time_limit=60,
                grace_seconds=1,
                halt=asyncio.Event(),
                on_line=log.write,
            ),
            30,
        )
        assert outcome.status == "succeeded"
        assert len(received.lines()) < 20000  # the step ended before its lines were all sent
    assert received.lines() == [str(n) for n in range(1, 20001)]


async def test_the_build_log_cap_truncates_once_and_flags_the_steps() -> None:
    budget = LogBudget(100)
    first, second = Received(), Received()
    async with StepLog(0, first.send, budget) as log:
        for number in range(10):
            log.write(f"{number:019d}")  # 20 bytes counted with its line ending
    async with StepLog(1, second.send, budget) as later:
        later.write("more")

    assert first.lines(0) == [f"{n:019d}" for n in range(5)] + [
        "[log truncated: the build's log passed 100 bytes]"
    ]
    assert log.truncated
    assert second.lines(1) == []
    assert later.truncated


async def test_a_step_under_the_cap_is_not_flagged() -> None:
    received = Received()
    async with StepLog(0, received.send, LogBudget(100)) as log:
        log.write("short")
    assert received.lines() == ["short"]
    assert not log.truncated


async def test_a_capped_step_is_still_read_to_its_end(tmp_path: Path) -> None:
    received = Received()
    async with StepLog(0, received.send, LogBudget(1000)) as log:
        outcome = await asyncio.wait_for(
            run_script(
                ["yes line | head -n 300000", "echo THE-END"],
                cwd=tmp_path,
                env=scrubbed_env(home=tmp_path / "home"),
                time_limit=60,
                grace_seconds=1,
                halt=asyncio.Event(),
                on_line=log.write,
            ),
            60,
        )
    assert outcome.status == "succeeded"
    assert log.truncated
    assert received.lines()[-1] == "[log truncated: the build's log passed 1000 bytes]"
    assert len(received.lines()) == 1000 // len(b"line\n") + 1
