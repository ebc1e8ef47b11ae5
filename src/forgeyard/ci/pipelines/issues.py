"""What is wrong with a pipeline file, said where it is written and in words.

Each :class:`PipelineIssue` has the 1-based line and column, the JSON path (``steps[1].commands``)
and a sentence. :func:`schema_issues` turns one :mod:`jsonschema` error into such sentences: an
unknown key is placed on the key itself with the closest allowed key suggested (difflib); a
missing key on the mapping that lacks it; anything else on the value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from forgeyard.ci.pipelines.schema import (
    CRON_SHAPE_PATTERN,
    EVENT_KINDS,
    MAX_TIMEOUT,
    STEP_NAME_PATTERN,
)
from forgeyard.ci.pipelines.yamlsource import Document, Path
from forgeyard.kernel.errors import InvalidInputError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPES = {
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "integer": "a whole number",
    "boolean": "true or false",
}


@dataclass(frozen=True)
class PipelineIssue:
    line: int  # 1-based
    column: int  # 1-based
    path: str  # "steps[1].commands"; "" for the whole file
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class PipelineInvalid(InvalidInputError):  # noqa: N818 - the name the CI issue gives it
    """A pipeline file with one or more issues; the API shows them under ``details.errors``."""

    def __init__(self, errors: Sequence[PipelineIssue], *, source: str) -> None:
        self.errors = list(errors)
        self.source = source
        count = f"{len(self.errors)} error" + ("" if len(self.errors) == 1 else "s")
        first = f"; {self.errors[0]}" if self.errors else ""
        super().__init__(
            f"{source} is not a valid pipeline ({count}){first}",
            details={"source": source, "errors": [issue.to_dict() for issue in self.errors]},
        )


def format_path(path: Path) -> str:
    """``("steps", 1, "commands")`` as ``steps[1].commands``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{_quote(part)}]"
    return text


def issue(document: Document, path: Path, message: str, *, key: bool = False) -> PipelineIssue:
    line, column = document.position(path, key=key)
    return PipelineIssue(line, column, format_path(path), message)


def schema_issues(error: ValidationError, document: Document) -> list[PipelineIssue]:
    path: Path = tuple(error.absolute_path)
    validator, instance, value, schema = _parts(error)
    at = _prefix(path)
    if validator == "anyOf":
        return _any_of(error, document)
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return [
            issue(document, (*path, k), _unknown_key(k, path, allowed), key=True)
            for k in instance
            if k not in allowed
        ]
    if validator == "required":
        return [
            issue(document, path, _missing(k, path))
            for k in value
            if isinstance(instance, dict) and k not in instance
        ]
    if validator == "pattern" and "propertyNames" in error.absolute_schema_path:
        message = (
            f"{at}{instance!r} is not a variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
        return [issue(document, (*path, instance), message, key=True)]
    return [issue(document, path, _message(error, path, at))]


def _message(error: ValidationError, path: Path, at: str) -> str:
    validator, instance, value, _ = _parts(error)
    if _is_commands(path) and instance in (None, "", []):
        return f"{format_path(path[:-1])}: a step needs at least one command"
    if validator == "type":
        if not path:
            return (
                f"a pipeline is a mapping with 'steps' (and optionally {_OPTIONAL}), "
                f"not {_describe(instance)}"
            )
        expected = " or ".join(
            _TYPES.get(t, t) for t in ([value] if isinstance(value, str) else value)
        )
        hint = "; put the value in quotes" if len(path) >= 2 and path[-2] == "env" else ""
        return f"{at}must be {expected}, not {_describe(instance)}{hint}"
    if validator == "enum":
        choices = ", ".join(map(str, value))
        return f"{at}must be one of {choices}, not {instance!r}{_suggest(instance, value)}"
    if validator == "minItems":
        if path == ("steps",):
            return "a pipeline needs at least one step"
        return f"{at}must not be an empty list"
    if validator == "minProperties":
        return (
            f"{at}name at least one trigger ({', '.join(EVENT_KINDS)}), "
            "or leave 'triggers' out for the default (push and manual)"
        )
    if validator in ("minimum", "maximum") and path[-1:] == ("timeout",):
        return f"{at}must be between 1 and {MAX_TIMEOUT} seconds, not {instance}"
    if validator == "pattern":
        if value == STEP_NAME_PATTERN:
            return (
                f"{at}a step name is 1 to 100 letters, digits, spaces, '.', '_' or '-', "
                f"not {instance!r}"
            )
        if value == CRON_SHAPE_PATTERN:
            return (
                f"{at}a cron expression has five fields (minute hour day-of-month month "
                f"day-of-week), not {instance!r}"
            )
        return f"{at}must not be empty"
    return f"{at}{error.message}"


def _any_of(error: ValidationError, document: Document) -> list[PipelineIssue]:
    """The errors of the alternative whose type the value has; else a type error naming all."""
    _, instance, alternatives, _ = _parts(error)
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    for index, alternative in enumerate(alternatives):
        if _fits(alternative, instance):
            subs = branches.get(index, [])
            return [found for sub in subs for found in schema_issues(sub, document)]
    path: Path = tuple(error.absolute_path)
    if _is_commands(path) and instance in (None, "", []):
        message = f"{format_path(path[:-1])}: a step needs at least one command"
    else:
        expected = " or ".join(_alternative(branch) for branch in alternatives)
        message = f"{_prefix(path)}must be {expected}, not {_describe(instance)}"
    return [issue(document, path, message)]


def _parts(error: ValidationError) -> tuple[str, Any, Any, Any]:
    """The validator's name, the value it refused, the keyword's value and the schema."""
    return str(error.validator), error.instance, error.validator_value, error.schema


def _fits(schema: dict[str, Any], instance: Any) -> bool:
    """Whether ``instance`` has the type of the alternative ``schema`` (an ``enum`` takes a
    scalar)."""
    if "type" in schema:
        return bool(Draft202012Validator.TYPE_CHECKER.is_type(instance, schema["type"]))
    return not isinstance(instance, list | dict)


def _alternative(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(schema["enum"])
    kind = str(schema.get("type"))
    if kind == "array":
        items = schema.get("items", {})
        return "a list of them" if "enum" in items else f"a list of {items.get('type', 'value')}s"
    return _TYPES.get(kind, kind)


_OPTIONAL = "triggers, env, artifacts"


def _unknown_key(key: str, path: Path, allowed: Iterable[str]) -> str:
    where = f"in {format_path(path)}" if path else "at the top level"
    return f"unknown key {key!r} {where}{_suggest(key, list(allowed), listing=True)}"


def _missing(key: str, path: Path) -> str:
    if _is_step(path):
        if key == "commands":
            return f"{format_path(path)}: a step needs at least one command"
        return f"{format_path(path)}: a step needs a {key}"
    if not path and key == "steps":
        return "missing key 'steps': a pipeline needs at least one step"
    return f"{_prefix(path)}missing key {key!r}"


def _suggest(word: Any, choices: Sequence[Any], *, listing: bool = False) -> str:
    if isinstance(word, str):
        close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
        if close:
            return f"; did you mean {close[0]!r}?"
    if listing and choices:
        return "; expected one of: " + ", ".join(map(str, choices))
    return ""


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the {type(value).__name__} {value}"  # a date or timestamp YAML read


def _prefix(path: Path) -> str:
    return f"{format_path(path)}: " if path else ""


def _is_step(path: Path) -> bool:
    return len(path) == 2 and path[0] == "steps" and isinstance(path[1], int)


def _is_commands(path: Path) -> bool:
    return len(path) == 3 and _is_step(path[:2]) and path[2] == "commands"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
