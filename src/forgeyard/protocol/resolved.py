"""A pipeline resolved for one build: the exact steps a runner runs, as canonical JSON.

The server resolves a :class:`~forgeyard.ci.pipelines.model.Pipeline` against the event that
started the build (``resolve``), signs :meth:`ResolvedPipeline.canonical_json` and stores the
bytes with the build; a retry reuses them, and the runner verifies the signature over the same
bytes before it reads them with :meth:`ResolvedPipeline.from_json`. Canonical means: keys
sorted, no whitespace, UTF-8, only strings, integers, lists and objects with ASCII keys, so the
bytes are also RFC 8785 (JCS) canonical and one value has exactly one encoding.

Only the standard library is imported here, so the runner's wire contracts can share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args

EventKind = Literal["push", "pull_request", "manual", "schedule"]
Status = Literal["success", "failure", "always"]
FORMAT_VERSION: Final = 1


@dataclass(frozen=True)
class TriggerEvent:
    """What started a build. ``branch``: the pushed branch, a pull request's source branch,
    the branch a manual or scheduled build runs on (None: not known yet). ``target_branch``:
    a pull request's target branch."""

    kind: EventKind
    branch: str | None = None
    target_branch: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(EventKind):
            raise ValueError(f"unknown event kind {self.kind!r}")


@dataclass(frozen=True)
class ResolvedStep:
    name: str
    commands: tuple[str, ...]
    env: Mapping[str, str]  # the step's own; ResolvedPipeline.environment() adds the pipeline's
    timeout: int  # seconds
    status: Status  # when to run, given how the earlier steps ended

    def should_run(self, *, earlier_failed: bool) -> bool:
        """The runner's decision at run time: ``success`` runs while nothing earlier failed,
        ``failure`` only after something earlier failed, ``always`` either way."""
        if self.status == "always":
            return True
        return earlier_failed if self.status == "failure" else not earlier_failed


@dataclass(frozen=True)
class ResolvedPipeline:
    source: str  # the file the pipeline came from (".forgeyard.yml"), or where it was stored
    event: TriggerEvent
    env: Mapping[str, str]
    steps: tuple[ResolvedStep, ...]
    skipped: tuple[str, ...]  # steps left out by their ``when`` branch or event conditions
    artifacts: tuple[str, ...]
    version: int = field(default=FORMAT_VERSION)

    def environment(self, step: ResolvedStep) -> dict[str, str]:
        """The variables a step runs with: the pipeline's, overridden by the step's own."""
        return {**self.env, **step.env}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "event": {
                "kind": self.event.kind,
                "branch": self.event.branch,
                "target_branch": self.event.target_branch,
            },
            "env": dict(self.env),
            "steps": [
                {
                    "name": step.name,
                    "commands": list(step.commands),
                    "env": dict(step.env),
                    "timeout": step.timeout,
                    "status": step.status,
                }
                for step in self.steps
            ],
            "skipped": list(self.skipped),
            "artifacts": list(self.artifacts),
        }

    def canonical_json(self) -> bytes:
        """The bytes to sign: the same pipeline always gives the same bytes."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ResolvedPipeline:
        """Read :meth:`canonical_json`'s bytes back; :class:`ValueError` for anything else
        (malformed JSON, a missing or extra field, a wrong type, another format version)."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"not a resolved pipeline: {error}") from error
        top = _object(raw, "pipeline", _TOP_KEYS)
        if top["version"] != FORMAT_VERSION:
            raise ValueError(f"unsupported resolved pipeline version {top['version']!r}")
        event = _object(top["event"], "event", {"kind", "branch", "target_branch"})
        kind = _choice(event["kind"], "event.kind", get_args(EventKind))
        steps = []
        for i, item in enumerate(_list(top["steps"], "steps")):
            where = f"steps[{i}]"
            step = _object(item, where, _STEP_KEYS)
            timeout = step["timeout"]
            if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
                raise ValueError(f"{where}.timeout: must be a positive integer")
            steps.append(
                ResolvedStep(
                    name=_string(step["name"], f"{where}.name"),
                    commands=_strings(step["commands"], f"{where}.commands"),
                    env=_env(step["env"], f"{where}.env"),
                    timeout=timeout,
                    status=cast(
                        Status, _choice(step["status"], f"{where}.status", get_args(Status))
                    ),
                )
            )
        return cls(
            source=_string(top["source"], "source"),
            event=TriggerEvent(
                kind=cast(EventKind, kind),
                branch=_optional_string(event["branch"], "event.branch"),
                target_branch=_optional_string(event["target_branch"], "event.target_branch"),
            ),
            env=_env(top["env"], "env"),
            steps=tuple(steps),
            skipped=_strings(top["skipped"], "skipped"),
            artifacts=_strings(top["artifacts"], "artifacts"),
            version=FORMAT_VERSION,
        )


_TOP_KEYS: Final = {"version", "source", "event", "env", "steps", "skipped", "artifacts"}
_STEP_KEYS: Final = {"name", "commands", "env", "timeout", "status"}


def _object(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be an object")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise ValueError(f"{where}: missing {missing}, unexpected {extra}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be a string")
    return value


def _optional_string(value: Any, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_string(item, f"{where}[{i}]") for i, item in enumerate(_list(value, where)))


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{where}: must be one of {', '.join(choices)}")
    return cast(str, value)


def _env(value: Any, where: str) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be an object")
    return MappingProxyType({k: _string(v, f"{where}.{k}") for k, v in value.items()})
