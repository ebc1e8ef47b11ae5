"""``forgeyard runner``: a CI runner, on this machine or any other that reaches the server."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer

from forgeyard.client.runner import RunnerClientError
from forgeyard.kernel.logging import configure_logging
from forgeyard.runner.agent import run_agent
from forgeyard.runner.config import (
    DEFAULT_GRACE_SECONDS,
    RunnerConfigError,
    RunnerOptions,
)

ENV_PREFIX = "FORGEYARD_RUNNER_"


def runner(
    server: Annotated[
        str,
        typer.Option(
            envvar=f"{ENV_PREFIX}SERVER",
            help="The server's base URL, e.g. https://forgeyard.example.com.",
        ),
    ],
    registration_token: Annotated[
        str | None,
        typer.Option(
            envvar=f"{ENV_PREFIX}REGISTRATION_TOKEN",
            help="Needed on the first start only; the environment variable keeps it out of ps.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(envvar=f"{ENV_PREFIX}NAME", help="Shown in the runner list (default: host)."),
    ] = None,
    labels: Annotated[
        str,
        typer.Option(
            envvar=f"{ENV_PREFIX}LABELS",
            help="Comma-separated labels to register with, besides the registration token's.",
        ),
    ] = "",
    work_dir: Annotated[
        Path,
        typer.Option(
            envvar=f"{ENV_PREFIX}WORK_DIR",
            help="Holds runner.json (the runner's token) and the builds' directories.",
        ),
    ] = Path("forgeyard-runner"),
    public_key: Annotated[
        str | None,
        typer.Option(
            envvar=f"{ENV_PREFIX}PUBLIC_KEY",
            help="Pin the key builds must be signed with, instead of the one the server gave.",
        ),
    ] = None,
    grace_seconds: Annotated[
        float,
        typer.Option(
            min=0,
            envvar=f"{ENV_PREFIX}GRACE_SECONDS",
            help="Between SIGTERM and SIGKILL when a step is stopped.",
        ),
    ] = DEFAULT_GRACE_SECONDS,
) -> None:
    """Run a CI runner: register once, then claim builds and run them one at a time until
    stopped (SIGTERM or Ctrl-C; a build it held is left to the server to run again)."""
    configure_logging()
    # httpx logs every request at INFO: for a runner, one line per log batch it sends.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = RunnerOptions(
        server=server,
        work_dir=work_dir,
        registration_token=registration_token or None,
        name=name or socket.gethostname(),
        labels=tuple(label.strip() for label in labels.split(",") if label.strip()),
        public_key=public_key,
        grace_seconds=grace_seconds,
    )
    try:
        asyncio.run(_run(options))
    except (RunnerConfigError, RunnerClientError) as exc:
        typer.echo(f"forgeyard runner: {exc}", err=True)
        raise typer.Exit(1) from None


async def _run(options: RunnerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_agent(options, stop=stop)
