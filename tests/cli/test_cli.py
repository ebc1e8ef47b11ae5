"""The ``forgeyard`` command as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from forgeyard import __version__
from forgeyard.cli.main import app
from forgeyard.kernel import migrations
from tests.databases import scratch_database

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORGEYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FORGEYARD_LOG_FORMAT", "json")
    monkeypatch.delenv("FORGEYARD_DATABASE_URL", raising=False)
    return tmp_path / "data"


def _reset_settings_cache() -> None:
    from forgeyard.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    _reset_settings_cache()
    yield
    _reset_settings_cache()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_db_upgrade_then_current_on_each_backend(
    data_dir: Path, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = migrations.head_revision()
    with scratch_database(backend, tmp_path) as url:
        monkeypatch.setenv("FORGEYARD_DATABASE_URL", url)
        before = runner.invoke(app, ["db", "current"]).stdout.strip()
        assert before.startswith("empty (")
        upgraded = runner.invoke(app, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        assert f"database at revision {head}" in upgraded.stdout
        assert runner.invoke(app, ["db", "current"]).stdout.strip() == f"{head} (up to date)"


def test_db_current_on_a_fresh_machine_says_empty(data_dir: Path) -> None:
    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0
    assert result.stdout.startswith("empty (no database yet")


def test_db_upgrade_defaults_to_sqlite_in_the_data_dir(data_dir: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "forgeyard.db").is_file()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_serve_refuses_a_bad_listen_address(data_dir: Path) -> None:
    result = runner.invoke(app, ["serve", "--listen", "nonsense"])
    assert result.exit_code != 0
    assert "listen address must be HOST:PORT" in str(result.exception)


@pytest.mark.parametrize(
    ("command", "option"), [("serve", "--workers=-1"), ("worker", "--workers=0")]
)
def test_a_worker_count_out_of_range_is_refused(data_dir: Path, command: str, option: str) -> None:
    result = runner.invoke(app, [command, option])
    assert result.exit_code == 2
    assert "--workers" in result.output


async def test_forgeyard_worker_runs_jobs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    from sqlalchemy import select

    from forgeyard.jobs import enqueue
    from forgeyard.kernel.db import Database
    from forgeyard.models.job import Job, WorkerRecord

    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")} | {
        "FORGEYARD_DATA_DIR": str(tmp_path / "data"),
        "FORGEYARD_LOG_FORMAT": "json",
        "FORGEYARD_JOBS__POLL_SECONDS": "0.1",
    }
    command = [sys.executable, "-m", "forgeyard"]
    upgrade = await asyncio.create_subprocess_exec(*command, "db", "upgrade", cwd=tmp_path, env=env)
    assert await upgrade.wait() == 0
    database = Database.from_url(f"sqlite:///{tmp_path / 'data' / 'forgeyard.db'}")
    async with database.transaction() as session:
        job_id = (await enqueue(session, "ops.cleanup", payload={"retention_days": 30})).id
    worker = await asyncio.create_subprocess_exec(
        *command, "worker", "--workers", "1", cwd=tmp_path, env=env
    )
    try:
        status = None
        for _ in range(300):
            async with database.transaction() as session:
                status = await session.scalar(select(Job.status).where(Job.id == job_id))
            if status == "succeeded":
                break
            await asyncio.sleep(0.1)
        assert status == "succeeded"
    finally:
        worker.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(worker.wait(), 30)
    async with database.transaction() as session:
        workers_left = (await session.scalars(select(WorkerRecord.id))).all()
    await database.dispose()
    assert exit_code == 0
    assert workers_left == [], "a stopped worker takes itself off the list"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited before it was ready"
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_serve_migrates_an_empty_data_dir_and_answers_ready(tmp_path: Path) -> None:
    """What ``make run`` does on a fresh machine."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")} | {
        "FORGEYARD_DATA_DIR": str(tmp_path / "data"),
        "FORGEYARD_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "forgeyard", "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            response = _wait_ready(f"http://127.0.0.1:{port}/readyz", server)
            assert response.status_code == 200
            assert response.json()["status"] == "ready"
            assert response.json()["worker_pool"] == "running", "two workers by default"
        finally:
            server.terminate()
            server.wait(timeout=15)
    data = tmp_path / "data"
    assert (data / "forgeyard.db").is_file()
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600
    token_file = data / "bootstrap-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    output = log_path.read_text().splitlines()
    # The console shows how to finish setup, token included; the JSON log lines never do.
    token = token_file.read_text().strip()
    assert any(line.strip() == token for line in output)
    lines = [json.loads(line) for line in output if line.startswith("{")]
    assert all(token not in json.dumps(line) for line in lines)
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines[-1]["route"] == "/readyz"
    assert request_lines[-1]["status"] == 200


def test_admin_create_owner_finishes_setup_headlessly(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(app, ["db", "upgrade"])
    monkeypatch.setenv("FORGEYARD_OWNER_PASSWORD", "a long enough password")
    args = ["admin", "create-owner", "--email", "ops@acme.example", "--name", "Ops"]
    result = runner.invoke(app, [*args, "--organization", "Acme"])
    assert result.exit_code == 0, result.output
    assert "setup is complete" in result.stdout
    again = runner.invoke(app, [*args, "--organization", "Acme"])
    assert again.exit_code == 1
    assert "already set up" in again.output


def test_admin_create_owner_refuses_a_bad_address(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(app, ["db", "upgrade"])
    monkeypatch.setenv("FORGEYARD_OWNER_PASSWORD", "a long enough password")
    result = runner.invoke(
        app,
        [
            "admin",
            "create-owner",
            "--email",
            "not-an-address",
            "--name",
            "x",
            "--organization",
            "y",
        ],
    )
    assert result.exit_code == 2
    assert "email" in result.output


def test_serve_with_a_runner_registers_it_and_stops_it_with_the_server(tmp_path: Path) -> None:
    """``forgeyard serve --runner``: the embedded default builds with no other process."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")} | {
        "FORGEYARD_DATA_DIR": str(tmp_path / "data"),
        "FORGEYARD_LOG_FORMAT": "json",
        "FORGEYARD_OWNER_PASSWORD": "a long enough password",
    }
    forgeyard = [sys.executable, "-m", "forgeyard"]
    subprocess.run([*forgeyard, "db", "upgrade"], cwd=tmp_path, env=env, check=True)
    owner = ["admin", "create-owner", "--email", "o@acme.example", "--name", "O"]
    subprocess.run(
        [*forgeyard, *owner, "--organization", "Acme"], cwd=tmp_path, env=env, check=True
    )
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [*forgeyard, "serve", "--runner", "--listen", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{port}/readyz", server)
            login = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/auth/login",
                json={"email": "o@acme.example", "password": "a long enough password"},
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            deadline = time.monotonic() + 60
            listed: list[dict[str, object]] = []
            while not listed and time.monotonic() < deadline:
                time.sleep(0.5)
                runners = httpx.get(f"http://127.0.0.1:{port}/api/v1/runners", headers=headers)
                listed = runners.json()["data"]
        finally:
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(timeout=30)
    assert [(r["name"], r["labels"], r["status"]) for r in listed] == [
        ("local", ["local"], "online")
    ]
    state = tmp_path / "data" / "runner" / "runner.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    left = subprocess.run(
        ["pgrep", "-f", f"forgeyard runner --server http://127.0.0.1:{port}"],
        capture_output=True,
        check=False,
    )
    assert exit_code in (0, -signal.SIGTERM)
    assert left.stdout == b"", "the runner stops with the server"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["runner"], "--server"),
        (["runner", "--server", "http://127.0.0.1:9", "--grace-seconds", "-1"], "--grace-seconds"),
    ],
)
def test_the_runner_refuses_missing_or_out_of_range_options(argv: list[str], named: str) -> None:
    result = runner.invoke(app, argv, env={"FORGEYARD_RUNNER_SERVER": ""})
    assert result.exit_code == 2
    assert named in result.output
