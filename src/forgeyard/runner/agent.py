"""The runner agent: hold the work directory, register once, then claim builds and run them
one at a time until told to stop.

A server that cannot be reached (not started yet, restarting) is waited for with growing
pauses; a server that no longer knows the runner's token ends the agent with a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import ValidationError

from forgeyard import __version__
from forgeyard.client.runner import (
    RunnerClient,
    RunnerClientError,
    ServerError,
    ServerUnreachable,
    register,
)
from forgeyard.kernel.logging import get_logger
from forgeyard.protocol.runner import RegisterRequest, RunnerUpdate
from forgeyard.runner.build import run_build
from forgeyard.runner.config import (
    RunnerConfigError,
    RunnerOptions,
    RunnerState,
    load_state,
    same_server,
    save_state,
    work_dir_lock,
)
from forgeyard.runner.workspace import remove_stale_workspaces

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
_UNAUTHORIZED = 401
log = get_logger("forgeyard.runner")

Result = TypeVar("Result")


async def run_agent(
    options: RunnerOptions,
    *,
    stop: asyncio.Event,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Run until ``stop`` is set. Raises :class:`RunnerConfigError` for a start it refuses
    (work directory busy, not registered, the token revoked) and the client's errors when
    registration itself is refused."""
    with work_dir_lock(options.work_dir):
        await asyncio.to_thread(remove_stale_workspaces, options.work_dir)
        state = await _registration(options, stop, transport)
        if state is None:  # stopped while waiting for the server
            return
        async with RunnerClient(
            options.server, runner_id=state.id, token=state.token, transport=transport
        ) as client:
            await _announce_version(client)
            await claim_and_run(
                client,
                options,
                public_key=options.public_key or state.pipeline_public_key,
                stop=stop,
            )
    log.info("runner_stopped")


async def claim_and_run(
    client: RunnerClient, options: RunnerOptions, *, public_key: str, stop: asyncio.Event
) -> None:
    """The loop: claim (long-polling), run what came, again, until ``stop`` is set."""
    pause = _Pause()
    while not stop.is_set():
        try:
            claimed = await _unless_stopped(client.claim(options.claim_wait_seconds), stop)
        except RunnerClientError as exc:
            if isinstance(exc, ServerError) and exc.status == _UNAUTHORIZED:
                raise RunnerConfigError(
                    f"the server refuses this runner's token ({exc.message}); was the runner "
                    f"deleted? Remove {options.work_dir}/runner.json and register it again"
                ) from exc
            log.warning("claim_failed", error=str(exc))
            await pause.wait(stop)
            continue
        pause.reset()
        if claimed is None:
            continue
        log.info("build_claimed", build_id=claimed.build_id)
        await run_build(
            client,
            claimed,
            work_dir=options.work_dir,
            public_key=public_key,
            grace_seconds=options.grace_seconds,
            stopping=stop,
        )


async def _registration(
    options: RunnerOptions, stop: asyncio.Event, transport: httpx.AsyncBaseTransport | None
) -> RunnerState | None:
    """The saved registration for this server, or a new one made with the registration
    token (waiting for the server as long as it cannot be reached)."""
    saved = load_state(options.work_dir)
    if saved is not None and same_server(saved.server, options.server):
        return saved
    if options.registration_token is None:
        raise RunnerConfigError(_unregistered_message(options, saved))
    try:
        request = RegisterRequest(
            registration_token=options.registration_token,
            name=options.name,
            labels=list(options.labels),
            version=__version__,
        )
    except ValidationError as exc:
        raise RunnerConfigError(f"cannot register: {exc}") from None
    pause = _Pause()
    while True:
        try:
            answer = await _unless_stopped(
                register(options.server, request, transport=transport), stop
            )
        except ServerUnreachable as exc:
            log.warning("server_unreachable", server=options.server, error=str(exc))
            if not await pause.wait(stop):
                return None
            continue
        if answer is None:
            return None
        state = RunnerState(answer.id, answer.token, answer.pipeline_public_key, options.server)
        save_state(options.work_dir, state)
        log.info("runner_registered", runner_id=state.id, labels=answer.labels)
        return state


def _unregistered_message(options: RunnerOptions, saved: RunnerState | None) -> str:
    if saved is None:
        return (
            "this runner is not registered yet: give --registration-token (an owner or admin "
            "makes one with POST /api/v1/runners/registration-tokens)"
        )
    return (
        f"{options.work_dir} holds a runner registered with {saved.server}, not "
        f"{options.server}: give --registration-token to register with {options.server}, "
        "or use another --work-dir"
    )


async def _announce_version(client: RunnerClient) -> None:
    """Tell the server which version runs now; not worth failing a start for."""
    try:
        await client.update(RunnerUpdate(version=__version__))
    except RunnerClientError as exc:
        log.warning("version_not_announced", error=str(exc))


async def _unless_stopped(call: Awaitable[Result], stop: asyncio.Event) -> Result | None:
    """``call``'s result, or None (``call`` cancelled) once ``stop`` is set."""
    work = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    return None if work.cancelled() else work.result()


@dataclass
class _Pause:
    """Growing, jittered pauses between attempts to reach a server that is away."""

    seconds: float = FIRST_PAUSE_SECONDS

    def reset(self) -> None:
        self.seconds = FIRST_PAUSE_SECONDS

    async def wait(self, stop: asyncio.Event) -> bool:
        """Pause; False when ``stop`` was set meanwhile."""
        delay = self.seconds * random.uniform(0.8, 1.2)  # noqa: S311 - spreading, not secrecy
        self.seconds = min(self.seconds * 2, LONGEST_PAUSE_SECONDS)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return True
        return False
