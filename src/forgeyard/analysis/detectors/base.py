"""What every detector shares: the finding and report shapes, and the helpers that read code.

A detector's result for one file depends on the file's content only, never on its path or on
the other files, so it can be cached per blob and reused by every commit that has the same
content. Detectors that need the whole project (dead code, duplicates) keep per-file *facts*
in that cached report and draw their conclusions in :meth:`Detector.combine`, which runs in
the parent over every file's report, cached or fresh.

Repository code is untrusted: it is read and parsed here, never imported or executed.
"""

from __future__ import annotations

import ast
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")

SNIPPET_MAX_LINES = 5
SNIPPET_MAX_CHARS = 500
PYTHON_SUFFIXES = frozenset({".py"})


@dataclass(frozen=True)
class FileRef:
    path: str  # relative to the tree's root, posix separators
    blob: str  # git blob id: equal ids, equal content, equal reports
    size: int


@dataclass(frozen=True)
class RawFinding:
    """One problem in one file's content; carries no path so it can be cached per blob."""

    rule_id: str
    severity: Severity
    line_start: int
    line_end: int
    message: str
    snippet: str
    symbol: str | None  # enclosing ``Class.method``, None at module level or outside Python
    fixable: bool = False


@dataclass
class FileReport:
    """One detector's result for one file content; survives a JSON round trip unchanged."""

    findings: list[RawFinding] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the file could not be analysed (syntax error, binary…)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileReport:
        return cls(
            findings=[RawFinding(**finding) for finding in data.get("findings", ())],
            metrics=dict(data.get("metrics", {})),
            facts=dict(data.get("facts", {})),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class ProjectFinding:
    """A finding that only the whole project shows (see :meth:`Detector.combine`)."""

    path: str
    finding: RawFinding


class Detector(ABC):
    """One analysis. ``version`` names the tool's version and our mapping's revision: it is
    part of the cache key, so changing either re-analyses every blob."""

    name: ClassVar[str]
    version: ClassVar[str]

    def applies_to(self, path: str) -> bool:
        """Whether this detector wants the file at ``path`` (by name only)."""
        return is_python(path)

    @abstractmethod
    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        """Reports for ``paths`` (files under ``root``); runs inside the worker subprocess.

        A file the tool cannot read gets a report with ``error`` set, never an exception.
        """

    def combine(self, reports: Mapping[str, FileReport]) -> list[ProjectFinding]:
        """Findings drawn from every file's report together; runs in the parent."""
        return []


def is_python(path: str) -> bool:
    return PurePosixPath(path).suffix in PYTHON_SUFFIXES


def read_text(file: Path) -> str:
    """A file's text; bytes that are not UTF-8 become U+FFFD rather than an error."""
    return file.read_bytes().decode("utf-8", errors="replace")


def parse_python(source: bytes | str) -> ast.Module:
    """``ast.parse`` that reports every failure as :class:`SyntaxError` (null bytes raise
    ValueError, deep nesting RecursionError or MemoryError)."""
    try:
        return ast.parse(source)
    except SyntaxError:
        raise
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SyntaxError(f"unparsable source: {type(exc).__name__}") from None


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"


def enclosing_symbols(tree: ast.AST) -> dict[int, str]:
    """Line number → qualified name (``Class.method``) of the innermost function or class
    that spans it, decorators included; lines at module level are absent."""
    symbols: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                for line in range(first, (child.end_lineno or child.lineno) + 1):
                    symbols[line] = name  # inner definitions are visited later and win
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return symbols


def snippet(lines: list[str], start: int, end: int) -> str:
    """Lines ``start``..``end`` (1-based, inclusive), capped to a few lines and characters."""
    start = max(start, 1)
    end = min(max(end, start), start + SNIPPET_MAX_LINES - 1)
    text = "\n".join(line.rstrip() for line in lines[start - 1 : end])
    return text[:SNIPPET_MAX_CHARS]
