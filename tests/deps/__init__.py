"""Tests of the dependency-updates domain; :func:`changed_line` checks one-line rewrites."""

from __future__ import annotations

import difflib


def changed_line(before: str, after: str) -> tuple[str, str]:
    """The one line ``after`` changed in ``before`` (old, new); fails on any other change,
    including a lost trailing newline."""
    diff = list(difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert (len(removed), len(added)) == (1, 1), "".join(diff)
    return removed[0], added[0]
