"""Tests of the CI domain; :func:`issues` and :func:`only` read a pipeline's validation."""

from __future__ import annotations

from textwrap import dedent
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forgeyard.ci.pipelines import PipelineIssue


def issues(text: str) -> list[tuple[int, int, str, str]]:
    """Every issue of ``text`` (dedented) as (line, column, path, message)."""
    from forgeyard.ci.pipelines import validate_pipeline  # only the pipeline tests need it

    return [(i.line, i.column, i.path, i.message) for i in validate_pipeline(dedent(text))]


def only(text: str) -> PipelineIssue:
    """The one issue of ``text`` (dedented); fails when there are none or several."""
    from forgeyard.ci.pipelines import validate_pipeline

    found = validate_pipeline(dedent(text))
    assert len(found) == 1, found
    return found[0]
