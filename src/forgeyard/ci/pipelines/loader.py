"""From a pipeline file's text to a :class:`Pipeline`, or every issue it has.

In order: the YAML is composed with positions (a syntax error stops there, as the one issue);
the values are checked against :data:`PIPELINE_SCHEMA`, all errors at once; then the rules the
schema cannot state: unique step names, cron fields in range (read by ``cronsim``, which the
scheduler uses too, so what validates also schedules), artifact paths inside the work directory.
A value the YAML layer already refused (a duplicate key, an unknown tag) gets no second issue.
"""

from __future__ import annotations

import functools
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, cast

from cronsim import CronSim, CronSimError
from jsonschema import Draft202012Validator

from forgeyard.ci.pipelines.issues import (
    PipelineInvalid,
    PipelineIssue,
    format_path,
    issue,
    schema_issues,
)
from forgeyard.ci.pipelines.model import BranchFilter, Pipeline, Step, Triggers, When
from forgeyard.ci.pipelines.schema import DEFAULT_FILE, DEFAULT_TIMEOUT, PIPELINE_SCHEMA
from forgeyard.ci.pipelines.yamlsource import Document, Path, compose
from forgeyard.protocol.resolved import EventKind, Status

MAX_BYTES: Final = 1024 * 1024  # a pipeline file larger than this is refused unread
# Pipelines are immutable, and building a commit reads the same file again and again: the
# last few small ones are kept loaded (composing and validating one costs about 1 ms).
_KEPT_LOADED = 64
_KEPT_BELOW_CHARS = 64 * 1024


def validate_pipeline(text: str) -> list[PipelineIssue]:
    """Every issue of the pipeline in ``text``, by line and column; empty when it is valid."""
    return _check(text)[1]


def load_pipeline(text: str, *, source: str = DEFAULT_FILE) -> Pipeline:
    """The pipeline in ``text``, with defaults filled; :class:`PipelineInvalid` with every issue
    otherwise. ``source`` names the file in messages and in the pipeline."""
    if len(text) < _KEPT_BELOW_CHARS:
        return _load_kept(text, source)
    return _load(text, source)


@functools.lru_cache(maxsize=_KEPT_LOADED)
def _load_kept(text: str, source: str) -> Pipeline:
    return _load(text, source)  # an invalid one raises, and nothing is kept


def _load(text: str, source: str) -> Pipeline:
    document, issues = _check(text)
    if issues:
        raise PipelineInvalid(issues, source=source)
    return _build(document.values, source)


def _check(text: str) -> tuple[Document, list[PipelineIssue]]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        message = f"the file is larger than {MAX_BYTES // 1024} KiB"
        return Document(None), [PipelineIssue(1, 1, "", message)]
    document = compose(text)
    issues = [
        PipelineIssue(e.line, e.column, format_path(e.path), _prefixed(e.path, e.message))
        for e in document.errors
    ]
    if document.values is None and not document.errors:
        issues.append(PipelineIssue(1, 1, "", "the pipeline is empty: it needs at least 'steps'"))
    if document.values is None:
        return document, issues
    refused = {e.path for e in document.errors if e.replaced}
    for error in _validator().iter_errors(document.values):
        path = tuple(error.absolute_path)
        if not any(path[: len(r)] == r for r in refused):
            issues.extend(schema_issues(error, document))
    issues.extend(_rules(document))
    unique = {(i.line, i.column, i.path, i.message): i for i in issues}
    return document, sorted(unique.values(), key=lambda i: (i.line, i.column, i.path))


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(PIPELINE_SCHEMA)


def _rules(document: Document) -> list[PipelineIssue]:
    values = document.values
    if not isinstance(values, dict):
        return []
    issues: list[PipelineIssue] = []
    first: dict[str, Path] = {}
    steps = values.get("steps")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        name = step.get("name") if isinstance(step, dict) else None
        if not isinstance(name, str):
            continue
        path: Path = ("steps", i, "name")
        if name in first:
            line = document.position(first[name])[0]
            message = f"steps[{i}].name: duplicate step name {name!r} (first used at line {line})"
            issues.append(issue(document, path, message))
        else:
            first[name] = path
    triggers = values.get("triggers")
    schedule = triggers.get("schedule") if isinstance(triggers, dict) else None
    cron = schedule.get("cron") if isinstance(schedule, dict) else None
    if isinstance(cron, str) and len(cron.split()) == 5:
        try:
            CronSim(cron, datetime(2000, 1, 1))  # only the expression is read
        except CronSimError as error:
            message = (
                f"triggers.schedule.cron: {cron!r} is not a valid cron expression: "
                f"{str(error).lower()}"
            )
            issues.append(issue(document, ("triggers", "schedule", "cron"), message))
    artifacts = values.get("artifacts")
    for i, pattern in enumerate(artifacts if isinstance(artifacts, list) else []):
        if isinstance(pattern, str) and (pattern.startswith("/") or ".." in pattern.split("/")):
            message = (
                f"artifacts[{i}]: {pattern!r} must be a path inside the work directory "
                "(relative, without '..')"
            )
            issues.append(issue(document, ("artifacts", i), message))
    return issues


def _build(values: dict[str, Any], source: str) -> Pipeline:
    return Pipeline(
        source=source,
        triggers=_triggers(values.get("triggers")),
        env=_env(values.get("env")),
        steps=tuple(_step(step) for step in values["steps"]),
        artifacts=tuple(values.get("artifacts", ())),
    )


def _triggers(raw: dict[str, Any] | None) -> Triggers:
    if raw is None:
        return Triggers()
    schedule = raw.get("schedule")
    return Triggers(
        push=_branch_filter(raw.get("push", False)),
        pull_request=_branch_filter(raw.get("pull_request", False)),
        manual=bool(raw.get("manual", False)),
        schedule=" ".join(schedule["cron"].split()) if schedule else None,
    )


def _branch_filter(raw: bool | dict[str, Any]) -> BranchFilter | None:
    if raw is False:
        return None
    if raw is True or "branches" not in raw:
        return BranchFilter()
    return BranchFilter(_strings(raw["branches"]))


def _step(raw: dict[str, Any]) -> Step:
    when = raw.get("when", {})
    return Step(
        name=raw["name"],
        commands=_strings(raw["commands"]),
        env=_env(raw.get("env")),
        timeout=int(raw.get("timeout", DEFAULT_TIMEOUT)),
        when=When(
            branch=_strings(when["branch"]) if "branch" in when else None,
            event=cast(tuple[EventKind, ...], _strings(when["event"])) if "event" in when else None,
            status=cast(Status, when.get("status", "success")),
        ),
    )


def _strings(raw: str | list[str]) -> tuple[str, ...]:
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _env(raw: dict[str, str] | None) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(raw or {}))


def _prefixed(path: Path, message: str) -> str:
    return f"{format_path(path)}: {message}" if path else message
