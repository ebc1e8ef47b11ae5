"""Running one step in real processes: its lines in order, its exit code, its time limit and
cancellation ending the whole process group, and the environment it sees."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from forgeyard.kernel.processes import scrubbed_env
from forgeyard.protocol.resolved import ResolvedPipeline, ResolvedStep, TriggerEvent
from forgeyard.protocol.runner import BuildSpec
from forgeyard.runner.spec import step_environment
from forgeyard.runner.steps import StepOutcome, run_script
from tests.runner.helpers import wait_gone

GRACE = 1.0
MARGIN = 5.0  # generous: a loaded machine schedules slowly


async def _run(
    tmp_path: Path,
    commands: list[str],
    *,
    time_limit: float = 30,
    halt: asyncio.Event | None = None,
    env: dict[str, str] | None = None,
    lines: list[str] | None = None,
) -> StepOutcome:
    return await run_script(
        commands,
        cwd=tmp_path,
        env=env if env is not None else scrubbed_env(home=tmp_path / "home"),
        time_limit=time_limit,
        grace_seconds=GRACE,
        halt=halt or asyncio.Event(),
        on_line=(lines if lines is not None else []).append,
    )


async def _first_line(lines: list[str], within: float = 10) -> str:
    deadline = time.monotonic() + within
    while not lines:
        assert time.monotonic() < deadline, "the step printed nothing"
        await asyncio.sleep(0.02)
    return lines[0]


async def test_output_arrives_as_lines_in_order(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = await _run(
        tmp_path, ["echo one", "echo two >&2", "printf 'three\\nfour'"], lines=lines
    )
    assert outcome == StepOutcome("succeeded", 0)
    assert lines == ["one", "two", "three", "four"]


async def test_the_first_failing_command_ends_the_step_with_its_exit_code(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    outcome = await _run(tmp_path, ["echo before", "sh -c 'exit 7'", "echo after"], lines=lines)
    assert outcome == StepOutcome("failed", 7)
    assert lines == ["before"]


async def test_commands_run_in_the_source_directory(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here\n")
    lines: list[str] = []
    outcome = await _run(tmp_path, ["cat marker.txt"], lines=lines)
    assert outcome.status == "succeeded"
    assert lines == ["here"]


async def test_a_timeout_ends_the_whole_process_group(tmp_path: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    outcome = await _run(tmp_path, ["sleep 300 & echo $!", "sleep 300"], time_limit=1, lines=lines)
    assert outcome == StepOutcome("timed_out", None)
    assert time.monotonic() - started < 1 + GRACE + MARGIN
    assert await wait_gone(int(lines[0]), within=GRACE + MARGIN)


async def test_a_step_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    outcome = await _run(
        tmp_path, ["trap '' TERM", "sleep 300 & echo $!", "sleep 300"], time_limit=1, lines=lines
    )
    assert outcome.status == "timed_out"
    assert time.monotonic() - started < 1 + GRACE + MARGIN
    assert await wait_gone(int(lines[0]), within=MARGIN)


async def test_cancelling_ends_the_whole_process_group(tmp_path: Path) -> None:
    lines: list[str] = []
    halt = asyncio.Event()
    step = asyncio.create_task(
        _run(tmp_path, ["sleep 300 & echo $!", "sleep 300"], halt=halt, lines=lines)
    )
    child = int(await _first_line(lines))

    halt.set()

    outcome = await asyncio.wait_for(step, GRACE + MARGIN)
    assert outcome == StepOutcome("cancelled", None)
    assert await wait_gone(child, within=GRACE + MARGIN)


async def test_what_a_step_leaves_running_ends_with_it(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = await asyncio.wait_for(
        _run(tmp_path, ["sleep 300 & echo $!", "echo done"], lines=lines), MARGIN
    )
    assert outcome == StepOutcome("succeeded", 0)
    assert lines[1] == "done"
    assert await wait_gone(int(lines[0]), within=MARGIN)


async def test_a_step_sees_its_pipeline_and_nothing_of_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEYARD_RUNNER_TOKEN", "fyr_the-runners-own-secret")
    step = ResolvedStep(
        name="show",
        commands=("env",),
        env={"STEP_ONLY": "s", "SHARED": "step"},
        timeout=60,
        status="success",
    )
    pipeline = ResolvedPipeline(
        source=".forgeyard.yml",
        event=TriggerEvent("push", branch="main"),
        env={"PIPELINE_WIDE": "p", "SHARED": "pipeline"},
        steps=(step,),
        skipped=(),
        artifacts=(),
    )
    spec = BuildSpec(
        build_id="bld_1",
        commit="abc123",
        repository="demo",
        pipeline=pipeline.to_dict(),
        run=[0],
        max_log_bytes=1_000_000,
    )
    home = tmp_path / "home"
    lines: list[str] = []

    outcome = await _run(
        tmp_path,
        list(step.commands),
        env=step_environment(spec, pipeline, step, home=home),
        lines=lines,
    )

    assert outcome.status == "succeeded"
    seen = dict(line.split("=", 1) for line in lines)
    assert "FORGEYARD_RUNNER_TOKEN" not in seen
    assert "fyr_the-runners-own-secret" not in "\n".join(lines)
    assert seen["PIPELINE_WIDE"] == "p"
    assert seen["STEP_ONLY"] == "s"
    assert seen["SHARED"] == "step"
    assert seen["CI"] == "true"
    assert seen["FORGEYARD_BUILD_ID"] == "bld_1"
    assert seen["FORGEYARD_COMMIT"] == "abc123"
    assert seen["FORGEYARD_STEP"] == "show"
    assert seen["HOME"] == str(home)


async def test_a_step_writing_more_than_the_pipe_holds_is_read_to_its_end(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    outcome = await asyncio.wait_for(
        _run(tmp_path, ["yes line | head -n 200000", "echo THE-END"], lines=lines), 60
    )
    assert outcome.status == "succeeded"
    assert len(lines) == 200001
    assert lines[-1] == "THE-END"
