"""``forgeyard serve --runner``: one runner beside the server, so the embedded default builds
with no other process to start.

The runner is a child process of its own (steps are untrusted code, and the agent talks to the
server only over HTTP, like any other runner), started with nothing of the server's
environment. It belongs to the instance's first organization and keeps its state in
``<data dir>/runner``; the first start makes a registration token for it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

import uvicorn
from sqlalchemy import select

from forgeyard.ci import runners
from forgeyard.kernel.crypto import TokenHasher
from forgeyard.kernel.db import Database
from forgeyard.kernel.keys import instance_secret
from forgeyard.kernel.logging import get_logger
from forgeyard.models.identity import Organization
from forgeyard.settings import Settings

STATE_FILE = "runner.json"
REGISTRATION_HOURS = 1
log = get_logger("forgeyard.cli")


def work_dir(settings: Settings) -> Path:
    return settings.data_dir / "runner"


async def registration_token(settings: Settings) -> str | None:
    """A token for the local runner's first start; None when it registered already, or when
    setup has made no organization yet."""
    if (work_dir(settings) / STATE_FILE).exists():
        return None
    given = settings.secret_key.get_secret_value() if settings.secret_key else None
    hasher = TokenHasher(instance_secret(given, settings.data_dir))
    database = Database.from_url(settings.resolved_database_url, settings.db)
    try:
        async with database.transaction() as session:
            first = await session.scalar(
                select(Organization.id).order_by(Organization.created_at, Organization.id)
            )
            if first is None:
                return None
            _row, token = await runners.registration_token_for(
                session=session,
                organization_id=first,
                created_by_id=None,
                hasher=hasher,
                description="the local runner of forgeyard serve --runner",
                labels=["local"],
                valid_hours=REGISTRATION_HOURS,
            )
    finally:
        await database.dispose()
    return token


def start(settings: Settings, server_url: str, token: str | None) -> subprocess.Popen[bytes] | None:
    """The runner process, or None (with a log line saying why) when it cannot register."""
    folder = work_dir(settings)
    if token is None and not (folder / STATE_FILE).exists():
        log.warning("local_runner_waits_for_setup", hint="finish setup, then restart serve")
        return None
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "forgeyard", "runner", "--server", server_url]
    argv += ["--work-dir", str(folder), "--name", "local"]
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TZ") if name in os.environ}
    if token is not None:  # in the environment, not the command line other users can list
        env["FORGEYARD_RUNNER_REGISTRATION_TOKEN"] = token
    log.info("local_runner_starting", work_dir=str(folder))
    return subprocess.Popen(argv, env=env)  # noqa: S603 - our own command, no shell


def ask_to_stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, without waiting: the server is shutting down and waits for the runner's
    long-poll to end, which it does once the runner has hung up."""
    if process is not None and process.poll() is None:
        process.terminate()


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServerWithRunner(uvicorn.Server):
    """uvicorn's server, telling the local runner to stop as soon as a signal asks the
    server to (uvicorn re-raises the signal once it has shut down, so code after
    ``serve()`` may never run)."""

    def __init__(self, config: uvicorn.Config, runner: subprocess.Popen[bytes] | None) -> None:
        super().__init__(config)
        self.runner = runner

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        ask_to_stop(self.runner)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # Asked to stop already; the server outlives it, so no runner is left behind.
        await asyncio.to_thread(stop, self.runner)
