"""Prefixed, sortable ids: ``repo_01JD7X…`` is a ULID behind the kind of thing it names.

The prefix lets a person (and a log search) tell a repository id from a job id at a glance;
the ULID sorts by creation time, so ids make good pagination keys and index well.
"""

from __future__ import annotations

import re

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from ulid import ULID

_PREFIX = re.compile(r"^[a-z]{2,8}$")
_ULID_TEXT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
ID_LENGTH = 8 + 1 + 26


class InvalidIdError(ValueError):
    pass


def _check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"id prefix must be 2-8 lowercase letters, got {prefix!r}")
    return prefix


def new_id(prefix: str) -> str:
    return f"{_check_prefix(prefix)}_{ULID()}"


def is_valid_id(prefix: str, value: str) -> bool:
    head, sep, tail = value.partition("_")
    return sep == "_" and head == prefix and bool(_ULID_TEXT.match(tail))


class PrefixedId(TypeDecorator[str]):
    """A column holding ids of one prefix; binding an id of another kind is a bug and raises."""

    impl = String(ID_LENGTH)
    cache_ok = True

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = _check_prefix(prefix)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and not is_valid_id(self.prefix, value):
            raise InvalidIdError(f"{value!r} is not a {self.prefix}_ id")
        return value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return value
