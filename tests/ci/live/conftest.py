"""The test's application served over real HTTP on a loopback port, for runner processes.

Runners are separate processes that speak HTTP, as in production; the server is the test's
own application (its database and settings), served by uvicorn inside the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from forgeyard.settings import Settings
from tests.ci.builds.conftest import build_settings
from tests.processes import free_port
from tests.repos.conftest import database, tenants  # noqa: F401

SERVER_SECRET = "server-secret-a-step-must-never-see"


@pytest.fixture
def settings(tmp_path: Path, committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The build tests' settings, with room for tests that poll while a runner works."""
    chosen = build_settings(tmp_path, committed_url, monkeypatch)
    free = chosen.auth.plans["free"]
    chosen.auth.plans["free"] = free.model_copy(update={"api_calls_per_minute": 100_000})
    return chosen


@dataclass
class LiveServer:
    url: str


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[LiveServer]:
    port = free_port()
    # A claim long-polls for up to 30 s; at the end of a test nobody waits for one to return.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}")
    server.should_exit = True
    await serving


@dataclass
class RunnerProcess:
    process: subprocess.Popen[bytes]
    work_dir: Path
    log: Path

    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.work_dir / "runner.json").read_text())
        return loaded

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no goodbye to the server."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@dataclass
class Runners:
    server: LiveServer
    root: Path
    started: list[RunnerProcess] = field(default_factory=list)

    def start(self, name: str, registration_token: str, *options: str) -> RunnerProcess:
        work_dir = self.root / name
        work_dir.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{name}.log"
        env = {
            **os.environ,
            # What a server's environment holds; the runner must not pass it to steps.
            "FORGEYARD_SECRET_KEY": SERVER_SECRET,
            "FORGEYARD_DATABASE_URL": "postgresql://forgeyard:" + SERVER_SECRET + "@db/forgeyard",
        }
        argv = [sys.executable, "-m", "forgeyard", "runner", "--server", self.server.url]
        argv += ["--registration-token", registration_token, "--name", name]
        argv += ["--work-dir", str(work_dir), "--grace-seconds", "2", *options]
        with log.open("wb") as output:
            process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
        started = RunnerProcess(process, work_dir, log)
        self.started.append(started)
        return started

    def stop_all(self) -> None:
        for runner in self.started:
            if runner.process.poll() is None:
                runner.process.terminate()
                try:
                    runner.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    runner.process.kill()
                    runner.process.wait()


@pytest.fixture
def runners(live: LiveServer, tmp_path: Path) -> Iterator[Runners]:
    started = Runners(live, tmp_path / "runners")
    yield started
    started.stop_all()


async def wait_for(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], check: Any, within: float = 30
) -> dict[str, Any]:
    """GET ``url`` until ``check(body)`` holds; the last body otherwise, failing the test."""
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = (await client.get(url, headers=headers)).json()
        if check(body):
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting on {url}: {body}")
        await asyncio.sleep(0.1)
