"""One claimed build, start to end: check its signature, fetch its source, run its steps,
upload its artifacts, report how it ended.

While the build is held, a heartbeat extends its lease every third of ``lease_seconds``. A
build stops early for one of three reasons (:class:`BuildControl`): someone cancelled it (the
running step is ended and reported ``cancelled``, so is the build), the server says the runner
lost it (nothing more is sent about it), or the runner itself is stopping (nothing more is
sent either: the lease runs out and the server re-queues or fails it, as after a crash).
"""

from __future__ import annotations

import asyncio
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from forgeyard.client.runner import LeaseLost, RunnerClient, RunnerClientError
from forgeyard.kernel.logging import get_logger
from forgeyard.kernel.signing import SignatureInvalid
from forgeyard.protocol.resolved import ResolvedPipeline
from forgeyard.protocol.runner import (
    BuildResult,
    BuildSpec,
    ClaimedBuild,
    FinalStatus,
    LogBatch,
    StepReport,
)
from forgeyard.runner.logs import LogBudget, SendBatch, StepLog
from forgeyard.runner.spec import read_spec, step_environment
from forgeyard.runner.steps import StepOutcome, run_script
from forgeyard.runner.workspace import (
    Workspace,
    collect_artifacts,
    create_workspace,
    extract_source,
    remove_tree,
)

MAX_ERROR_CHARS = 2000  # BuildResult.error's limit
MIN_HEARTBEAT_SECONDS = 1.0
log = get_logger("forgeyard.runner")

StopReason = Literal["cancelled", "lost", "stopping"]


@dataclass
class BuildControl:
    """Whether, and why, the build must stop; set from heartbeats, answers, or the runner."""

    halt: asyncio.Event = field(default_factory=asyncio.Event)
    reason: StopReason | None = None

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:  # the first one decides what is still reported
            self.reason = reason
            self.halt.set()

    @property
    def abandoned(self) -> bool:
        """Nothing more may be sent about the build."""
        return self.reason in ("lost", "stopping")


def final_status(control: BuildControl, outcomes: Sequence[StepOutcome]) -> FinalStatus:
    statuses = {outcome.status for outcome in outcomes}
    if control.reason == "cancelled":
        return "cancelled"
    if "timed_out" in statuses:
        return "timed_out"
    return "failed" if "failed" in statuses else "succeeded"


async def run_build(
    client: RunnerClient,
    claimed: ClaimedBuild,
    *,
    work_dir: Path,
    public_key: str,
    grace_seconds: float,
    stopping: asyncio.Event | None = None,
) -> FinalStatus | None:
    """Run a build this runner claimed. How it ended as reported to the server, or None when
    nothing could be or may be reported (lost, the runner stopping, the server unreachable)."""
    control = BuildControl()
    helpers = [asyncio.create_task(_keep_lease(client, claimed, control))]
    if stopping is not None:
        helpers.append(asyncio.create_task(_stop_when(stopping, control)))
    try:
        return await _run(
            _Build(client, claimed, control, work_dir, grace_seconds),
            public_key,
        )
    except LeaseLost:
        log.info("build_lost", build_id=claimed.build_id)
        return None
    except RunnerClientError as exc:
        log.warning("build_abandoned", build_id=claimed.build_id, error=str(exc))
        return None
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)


@dataclass
class _Build:
    client: RunnerClient
    claimed: ClaimedBuild
    control: BuildControl
    work_dir: Path
    grace_seconds: float

    @property
    def id(self) -> str:
        return self.claimed.build_id

    async def report(self, index: int, report: StepReport) -> None:
        ack = await self.client.report_step(self.id, index, report)
        if ack.cancel:
            self.control.stop("cancelled")

    async def finish(self, status: FinalStatus, error: str | None = None) -> FinalStatus | None:
        if self.control.abandoned:
            return None
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        await self.client.finish(self.id, BuildResult(status=status, error=error))
        log.info("build_finished", build_id=self.id, status=status)
        return status


async def _run(build: _Build, public_key: str) -> FinalStatus | None:
    try:
        spec, pipeline = read_spec(build.claimed, public_key)
        workspace = create_workspace(build.work_dir, build.id)
    except (SignatureInvalid, ValueError) as exc:
        log.warning("build_refused", build_id=build.id, reason=str(exc))
        return await build.finish("failed", f"the runner refused the build: {exc}")
    try:
        try:
            await _fetch_source(build, workspace)
        except (RunnerClientError, tarfile.TarError, OSError) as exc:
            if isinstance(exc, LeaseLost):
                raise
            return await build.finish("failed", f"the runner could not fetch the source: {exc}")
        outcomes = await _run_steps(build, spec, pipeline, workspace)
        error = None
        if build.control.reason is None:  # a cancelled build keeps nothing
            error = await _upload_artifacts(build, workspace, pipeline)
        return await build.finish(final_status(build.control, outcomes), error)
    finally:
        await asyncio.to_thread(remove_tree, workspace.root)


async def _fetch_source(build: _Build, workspace: Workspace) -> None:
    await build.client.download_source(build.id, workspace.archive)
    await asyncio.to_thread(extract_source, workspace.archive, workspace.src)
    workspace.archive.unlink()


async def _run_steps(
    build: _Build, spec: BuildSpec, pipeline: ResolvedPipeline, workspace: Workspace
) -> list[StepOutcome]:
    """The steps of ``spec.run`` in order, until one is cancelled or the build stops."""
    budget = LogBudget(spec.max_log_bytes)
    outcomes: list[StepOutcome] = []
    earlier_failed = False
    for index in spec.run:
        if build.control.reason is not None:
            break
        step = pipeline.steps[index]
        if not step.should_run(earlier_failed=earlier_failed):
            await build.report(index, StepReport(status="skipped"))
            continue
        await build.report(index, StepReport(status="running"))
        env = step_environment(spec, pipeline, step, home=workspace.home)
        async with StepLog(index, _log_sender(build), budget) as step_log:
            outcome = await run_script(
                step.commands,
                cwd=workspace.src,
                env=env,
                time_limit=step.timeout,
                grace_seconds=build.grace_seconds,
                halt=build.control.halt,
                on_line=step_log.write,
            )
            if note := _ending_note(outcome, step.timeout):
                step_log.write(note)
        if build.control.abandoned:
            break
        report = StepReport(
            status=outcome.status, exit_code=outcome.exit_code, log_truncated=step_log.truncated
        )
        await build.report(index, report)
        outcomes.append(outcome)
        earlier_failed = earlier_failed or outcome.status in ("failed", "timed_out")
    return outcomes


def _ending_note(outcome: StepOutcome, timeout: int) -> str | None:
    """A last line for a step the runner ended, so its log says why it stops short."""
    if outcome.status == "timed_out":
        return f"[the step ran past its timeout of {timeout} s and was stopped]"
    if outcome.status == "cancelled":
        return "[the build was cancelled; the step was stopped]"
    return None


def _log_sender(build: _Build) -> SendBatch:
    async def send(batch: LogBatch) -> None:
        if build.control.abandoned:
            return
        try:
            ack = await build.client.send_logs(build.id, batch)
        except LeaseLost:
            build.control.stop("lost")
            return
        except RunnerClientError as exc:  # the step goes on; only these lines are missing
            log.warning("log_batch_lost", build_id=build.id, step=batch.step, error=str(exc))
            return
        if ack.cancel:
            build.control.stop("cancelled")

    return send


async def _upload_artifacts(
    build: _Build, workspace: Workspace, pipeline: ResolvedPipeline
) -> str | None:
    """Upload what the pipeline's globs match; which files could not be, and why."""
    found = await asyncio.to_thread(collect_artifacts, workspace.src, pipeline.artifacts)
    problems = []
    for path, file in found:
        try:
            await build.client.upload_artifact(build.id, path, file)
        except LeaseLost:
            raise
        except RunnerClientError as exc:
            log.warning("artifact_not_uploaded", build_id=build.id, path=path, error=str(exc))
            problems.append(f"{path}: {exc}")
    return "artifacts not uploaded: " + "; ".join(problems) if problems else None


async def _keep_lease(client: RunnerClient, claimed: ClaimedBuild, control: BuildControl) -> None:
    """Heartbeats while the build is held; they also bring cancellation and loss."""
    interval = max(claimed.lease_seconds / 3, MIN_HEARTBEAT_SECONDS)
    while control.reason != "lost":
        await asyncio.sleep(interval)
        try:
            answer = await client.heartbeat([claimed.build_id])
        except RunnerClientError as exc:  # the next beat may get through before the lease ends
            log.warning("heartbeat_failed", build_id=claimed.build_id, error=str(exc))
            continue
        if claimed.build_id in answer.lost:
            control.stop("lost")
        elif claimed.build_id in answer.cancel:
            control.stop("cancelled")


async def _stop_when(stopping: asyncio.Event, control: BuildControl) -> None:
    await stopping.wait()
    control.stop("stopping")
