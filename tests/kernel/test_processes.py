"""run_limited and scrubbed_env: time limits kill the whole process tree, output is capped
to its tail, and nothing of the server's environment reaches the command."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from forgeyard.kernel.processes import run_limited, scrubbed_env


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (a container's PID 1 may not reap orphans)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" in status.read_text()


async def _wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        await asyncio.sleep(0.05)
    return _gone(pid)


def _is_dir(path: str) -> bool:
    return Path(path).is_dir()


def _written(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


async def _wait_for_file(path: Path, within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if text := _written(path):
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} was not written")


async def test_time_limit_kills_the_whole_tree(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > grandchild; sleep 30"
    started = time.monotonic()
    result = await run_limited(
        ["sh", "-c", script], cwd=tmp_path, env=scrubbed_env(home=tmp_path), time_limit=1
    )
    assert time.monotonic() - started < 5
    assert result.timed_out
    assert result.returncode is None
    assert not result.ok
    grandchild = int((tmp_path / "grandchild").read_text())
    assert await _wait_gone(grandchild)


async def test_a_command_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    result = await run_limited(
        ["sh", "-c", "trap '' TERM; sleep 30"],
        cwd=tmp_path,
        env=scrubbed_env(home=tmp_path),
        time_limit=0.5,
    )
    assert result.timed_out
    assert result.duration_seconds < 10


async def test_what_a_command_leaves_running_goes_when_it_ends(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > background; echo started"
    started = time.monotonic()
    result = await run_limited(
        ["sh", "-c", script], cwd=tmp_path, env=scrubbed_env(home=tmp_path), time_limit=20
    )
    assert time.monotonic() - started < 5  # its output pipe held open does not keep us waiting
    assert result.returncode == 0
    assert not result.timed_out
    assert result.output == "started\n"
    assert await _wait_gone(int((tmp_path / "background").read_text()))


async def test_cancelling_the_caller_kills_the_tree(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > grandchild; echo $$ > leader; sleep 30"
    task = asyncio.create_task(
        run_limited(
            ["sh", "-c", script], cwd=tmp_path, env=scrubbed_env(home=tmp_path), time_limit=60
        )
    )
    grandchild = int(await _wait_for_file(tmp_path / "grandchild"))
    leader = int(await _wait_for_file(tmp_path / "leader"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_gone(grandchild)
    assert await _wait_gone(leader)


async def test_output_is_capped_to_its_tail(tmp_path: Path) -> None:
    result = await run_limited(
        ["sh", "-c", "yes line | head -n 100000; echo THE-END"],
        cwd=tmp_path,
        env=scrubbed_env(home=tmp_path),
        time_limit=20,
        max_output_bytes=1000,
    )
    assert result.returncode == 0
    assert result.truncated
    assert len(result.output.encode()) <= 1000
    assert result.output.endswith("line\nTHE-END\n")


async def test_the_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEYARD_PROBE_SECRET", "do-not-leak")
    env = scrubbed_env({"EXTRA": "given"}, home=tmp_path / "home")
    result = await run_limited(["env"], cwd=tmp_path, env=env, time_limit=20)
    seen = dict(line.split("=", 1) for line in result.output.splitlines())
    assert "FORGEYARD_PROBE_SECRET" not in seen
    assert "do-not-leak" not in result.output
    assert seen["HOME"] == str(tmp_path / "home")
    assert seen["TMPDIR"].startswith(str(tmp_path / "home"))
    assert _is_dir(seen["TMPDIR"])
    assert seen["LC_ALL"] == "C.UTF-8"
    assert seen["EXTRA"] == "given"
    assert set(seen) == {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "EXTRA"}


async def test_a_nonzero_exit_code_and_both_streams_are_reported(tmp_path: Path) -> None:
    result = await run_limited(
        ["sh", "-c", "echo out; echo err >&2; exit 3"],
        cwd=tmp_path,
        env=scrubbed_env(home=tmp_path),
        time_limit=20,
    )
    assert result.returncode == 3
    assert not result.timed_out
    assert not result.ok
    assert result.output == "out\nerr\n"
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.duration_seconds >= 0


async def test_a_missing_program_is_exit_code_127(tmp_path: Path) -> None:
    result = await run_limited(
        ["forgeyard-no-such-program"], cwd=tmp_path, env=scrubbed_env(home=tmp_path), time_limit=5
    )
    assert result.returncode == 127
    assert "forgeyard-no-such-program" in result.output
