"""A loaded pipeline, which events start it, and its steps for one event.

Branch patterns are matched part by part: a pattern and a branch are split on ``/`` and each
part is matched with :func:`fnmatch.fnmatchcase` (``*``, ``?``, ``[abc]``; case-sensitive),
so ``*`` stays within one part, while a part that is exactly ``**`` matches any number of parts,
none included: ``release/*`` matches ``release/1.2`` but not ``release/1.2/hotfix``;
``release/**`` matches both; ``**`` matches every branch.

A pull request is filtered, and its steps' ``when.branch`` evaluated, on its target branch;
every other event on its own branch. An event whose branch is not known matches no branch
filter.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from forgeyard.ci.pipelines.schema import DEFAULT_FILE
from forgeyard.protocol.resolved import (
    EventKind,
    ResolvedPipeline,
    ResolvedStep,
    Status,
    TriggerEvent,
)


@dataclass(frozen=True)
class BranchFilter:
    """A push or pull request trigger; ``branches`` None: any branch."""

    branches: tuple[str, ...] | None = None

    def matches(self, branch: str | None) -> bool:
        if self.branches is None:
            return True
        return branch is not None and any(branch_matches(p, branch) for p in self.branches)


@dataclass(frozen=True)
class Triggers:
    """Which events start the pipeline. The default (no ``triggers`` key): a push to any
    branch, and a manual start."""

    push: BranchFilter | None = BranchFilter()
    pull_request: BranchFilter | None = None
    manual: bool = True
    schedule: str | None = None  # a five-field cron expression


@dataclass(frozen=True)
class When:
    """When a step is part of a build. ``branch``/``event`` None: any. ``status`` is decided by
    the runner as the build goes: see :meth:`ResolvedStep.should_run`."""

    branch: tuple[str, ...] | None = None
    event: tuple[EventKind, ...] | None = None
    status: Status = "success"

    def includes(self, event: TriggerEvent) -> bool:
        if self.event is not None and event.kind not in self.event:
            return False
        if self.branch is None:
            return True
        branch = _filtered_branch(event)
        return branch is not None and any(branch_matches(p, branch) for p in self.branch)


@dataclass(frozen=True)
class Step:
    name: str
    commands: tuple[str, ...]
    env: Mapping[str, str]
    timeout: int  # seconds
    when: When


@dataclass(frozen=True)
class Pipeline:
    steps: tuple[Step, ...]
    triggers: Triggers = Triggers()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    artifacts: tuple[str, ...] = ()
    source: str = DEFAULT_FILE

    def triggered_by(self, event: TriggerEvent) -> bool:
        """Whether ``event`` starts this pipeline."""
        triggers = self.triggers
        if event.kind == "push":
            return triggers.push is not None and triggers.push.matches(event.branch)
        if event.kind == "pull_request":
            pull = triggers.pull_request
            return pull is not None and pull.matches(event.target_branch)
        if event.kind == "manual":
            return triggers.manual
        return triggers.schedule is not None


def resolve(pipeline: Pipeline, event: TriggerEvent) -> ResolvedPipeline:
    """The build's pipeline for ``event``: the steps whose ``when.branch`` and ``when.event``
    hold, in file order, each keeping its ``when.status`` for the runner; the others are named
    in ``skipped``. Whether the event starts the pipeline at all is :meth:`Pipeline.triggered_by`'s
    question (a manual build may run a pipeline its triggers would not start)."""
    included = [step for step in pipeline.steps if step.when.includes(event)]
    return ResolvedPipeline(
        source=pipeline.source,
        event=event,
        env=pipeline.env,
        steps=tuple(
            ResolvedStep(
                name=step.name,
                commands=step.commands,
                env=step.env,
                timeout=step.timeout,
                status=step.when.status,
            )
            for step in included
        ),
        skipped=tuple(step.name for step in pipeline.steps if not step.when.includes(event)),
        artifacts=pipeline.artifacts,
    )


def branch_matches(pattern: str, branch: str) -> bool:
    """Whether ``branch`` matches ``pattern`` (the rules in this module's docstring)."""
    return _match(pattern.split("/"), branch.split("/"))


def _match(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    # matched[j]: the pattern's parts so far match the branch's first j parts.
    matched = [True] + [False] * len(parts)
    for head in pattern:
        if head == "**":
            for j in range(1, len(parts) + 1):
                matched[j] = matched[j] or matched[j - 1]
        else:
            matched = [False] + [
                matched[j] and fnmatch.fnmatchcase(parts[j], head) for j in range(len(parts))
            ]
    return matched[-1]


def _filtered_branch(event: TriggerEvent) -> str | None:
    return event.target_branch if event.kind == "pull_request" else event.branch
