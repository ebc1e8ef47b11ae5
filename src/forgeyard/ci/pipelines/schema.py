"""The JSON Schema (draft 2020-12) of a pipeline file, and the limits it states.

The schema states the shape of the file: which keys exist, their types, ranges and patterns.
Three rules it cannot state are checked in :mod:`forgeyard.ci.pipelines.loader`: step names are
unique, a ``cron`` expression's fields are in range, and an artifact path stays inside the
work directory. :data:`PIPELINE_SCHEMA` is plain JSON, so it can be served as is (for editors
that complete YAML from a schema).
"""

from __future__ import annotations

from typing import Any, Final

DEFAULT_FILE: Final = ".forgeyard.yml"
DEFAULT_TIMEOUT: Final = 3600  # seconds
MAX_TIMEOUT: Final = 86400
EVENT_KINDS: Final = ("push", "pull_request", "manual", "schedule")
STATUSES: Final = ("success", "failure", "always")
STEP_NAME_PATTERN: Final = r"^[A-Za-z0-9 ._-]{1,100}$"
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
CRON_SHAPE_PATTERN: Final = r"^\s*\S+(\s+\S+){4}\s*$"  # five fields; their values: loader
NOT_BLANK: Final = r"\S"

_string: dict[str, Any] = {"type": "string", "pattern": NOT_BLANK}
_strings: dict[str, Any] = {"type": "array", "items": _string, "minItems": 1}
_string_or_strings: dict[str, Any] = {"anyOf": [_string, _strings]}
_event_kind: dict[str, Any] = {"enum": list(EVENT_KINDS)}
_env: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": ENV_NAME_PATTERN},
    "additionalProperties": {"type": "string"},
}
_branch_filter: dict[str, Any] = {
    "anyOf": [
        {"type": "boolean"},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {"branches": _string_or_strings},
        },
    ]
}

PIPELINE_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:forgeyard:pipeline:1",
    "title": "Forgeyard pipeline",
    "type": "object",
    "additionalProperties": False,
    "required": ["steps"],
    "properties": {
        "triggers": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "push": _branch_filter,
                "pull_request": _branch_filter,
                "manual": {"type": "boolean"},
                "schedule": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["cron"],
                    "properties": {"cron": {"type": "string", "pattern": CRON_SHAPE_PATTERN}},
                },
            },
        },
        "env": _env,
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "commands"],
                "properties": {
                    "name": {"type": "string", "pattern": STEP_NAME_PATTERN},
                    "commands": _string_or_strings,
                    "env": _env,
                    "timeout": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT},
                    "when": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "branch": _string_or_strings,
                            "event": {
                                "anyOf": [
                                    _event_kind,
                                    {"type": "array", "items": _event_kind, "minItems": 1},
                                ]
                            },
                            "status": {"enum": list(STATUSES)},
                        },
                    },
                },
            },
        },
        "artifacts": {"type": "array", "items": _string},
    },
}
