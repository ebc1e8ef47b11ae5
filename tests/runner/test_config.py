"""The runner's state file and work directory, in process and through ``forgeyard runner``:
the token is kept 0600, one runner per work directory, clear refusals, a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeyard.runner.agent import run_agent
from forgeyard.runner.config import (
    RunnerConfigError,
    RunnerOptions,
    RunnerState,
    WorkDirBusy,
    load_state,
    save_state,
    work_dir_lock,
)
from tests.processes import free_port

STATE = RunnerState(
    id="rnr_1", token="fyr_secret", pipeline_public_key="key", server="http://forge.test"
)


def test_the_state_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    save_state(tmp_path, STATE)
    path = tmp_path / "runner.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {
        "id": "rnr_1",
        "token": "fyr_secret",
        "pipeline_public_key": "key",
        "server": "http://forge.test",
    }
    assert load_state(tmp_path) == STATE


def test_saving_again_keeps_the_file_private(tmp_path: Path) -> None:
    save_state(tmp_path, STATE)
    (tmp_path / "runner.json").chmod(0o644)
    save_state(tmp_path, STATE)
    assert (tmp_path / "runner.json").stat().st_mode & 0o777 == 0o600


def test_no_state_before_the_first_registration(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None


def test_a_damaged_state_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "runner.json").write_text("{not json")
    with pytest.raises(RunnerConfigError, match=r"runner\.json"):
        load_state(tmp_path)


def test_a_second_holder_of_the_work_directory_is_refused(tmp_path: Path) -> None:
    with work_dir_lock(tmp_path), pytest.raises(WorkDirBusy, match="another runner"):  # noqa: SIM117
        with work_dir_lock(tmp_path):
            pass
    with work_dir_lock(tmp_path):  # released with its holder
        pass


# The runner's options come from its arguments here, not from whoever runs the tests.
HERMETIC_ENV = {k: v for k, v in os.environ.items() if not k.startswith("FORGEYARD_RUNNER_")}


def _runner(work_dir: Path, server: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "forgeyard", "runner", "--server", server,
        "--work-dir", str(work_dir), *extra,
    ]  # fmt: skip


@pytest.fixture
def waiting_runner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, str]]:
    """A runner process waiting for a server that does not answer (nothing listens)."""
    server = f"http://127.0.0.1:{free_port()}"
    work_dir = tmp_path / "work"
    log = tmp_path / "first.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            _runner(work_dir, server, "--registration-token", "fyr_registration"),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=HERMETIC_ENV,
        )
    try:
        deadline = time.monotonic() + 30
        while b"server_unreachable" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process, work_dir, server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_second_runner_on_the_same_work_directory_exits_with_a_message(
    waiting_runner: tuple[subprocess.Popen[bytes], Path, str],
) -> None:
    _first, work_dir, server = waiting_runner
    second = subprocess.run(
        _runner(work_dir, server, "--registration-token", "fyr_registration"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=HERMETIC_ENV,
    )
    assert second.returncode == 1
    assert f"another runner is using {work_dir}" in second.stderr


def test_a_runner_waiting_for_its_server_stops_on_sigterm(
    waiting_runner: tuple[subprocess.Popen[bytes], Path, str],
) -> None:
    first, work_dir, _server = waiting_runner
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    assert not (work_dir / "runner.json").exists()


async def test_an_unregistered_runner_without_a_token_says_what_it_needs(
    tmp_path: Path,
) -> None:
    options = RunnerOptions(server=f"http://127.0.0.1:{free_port()}", work_dir=tmp_path)
    with pytest.raises(RunnerConfigError, match="not registered yet: give --registration-token"):
        await run_agent(options, stop=asyncio.Event())


async def test_a_runner_registered_with_another_server_does_not_send_it_its_token(
    tmp_path: Path,
) -> None:
    save_state(tmp_path, STATE)
    options = RunnerOptions(server=f"http://127.0.0.1:{free_port()}", work_dir=tmp_path)
    with pytest.raises(RunnerConfigError, match=r"registered with http://forge\.test"):
        await run_agent(options, stop=asyncio.Event())
