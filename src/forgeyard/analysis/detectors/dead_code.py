"""Dead code: vulture, split into a per-file scan and a project-wide verdict.

Vulture calls a definition unused when no file of the project uses its name. So each file is
scanned alone (a fresh ``Vulture`` per file) and its report keeps two facts: what it defines
and which names it uses. :meth:`DeadCodeDetector.combine` then applies vulture's verdict over
every file's facts, cached or fresh, so a commit that changes one file rescans one file.

Vulture also ignores some definitions because of the file's *name* (imports in
``__init__.py``, test functions and classes in test files). A cached report must not depend
on the path, so the scan uses a neutral file name and ``combine`` applies those rules with
the real path, through vulture's own rule functions. Unreachable code does not depend on
other files: it is an ordinary finding of the file's report.
"""

from __future__ import annotations

import functools
import io
import pkgutil
import tokenize
from collections.abc import Callable, Mapping
from importlib.metadata import version as package_version
from pathlib import Path, PurePosixPath
from typing import Any

from vulture import core as vulture_core  # type: ignore[import-untyped]

from forgeyard.analysis.detectors import severity
from forgeyard.analysis.detectors.base import (
    Detector,
    FileReport,
    ProjectFinding,
    RawFinding,
    describe_error,
    enclosing_symbols,
    parse_python,
    snippet,
)

# vulture's own default: every definition it records has at least this confidence.
MIN_CONFIDENCE = vulture_core.DEFAULT_CONFIDENCE
# A file name no path rule of vulture matches (not a test file, not __init__.py).
_NEUTRAL_NAME = "/forgeyard-scanned-module.py"
# Kind of definition → the scanner's list of them.
_COLLECTIONS = {
    "attribute": "defined_attrs",
    "class": "defined_classes",
    "function": "defined_funcs",
    "import": "defined_imports",
    "method": "defined_methods",
    "property": "defined_props",
    "variable": "defined_vars",
}


class DeadCodeDetector(Detector):
    name = "dead_code"
    version = f"vulture {package_version('vulture')}/1"

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        return {path: _scan_file(root / path) for path in paths}

    def combine(self, reports: Mapping[str, FileReport]) -> list[ProjectFinding]:
        definitions = [
            (path, item)
            for path, report in reports.items()
            for item in report.facts.get("definitions", ())
            if not _ignored_for_path(path, item)
        ]
        used: set[str] = set()
        for report in reports.values():
            used.update(report.facts.get("used", ()))
        imported = {item["name"] for _, item in definitions if item["type"] == "import"}
        for name in imported:
            used |= _whitelist_uses(name)
        unused = [
            ProjectFinding(path, _finding(item))
            for path, item in definitions
            if item["name"] not in used and item["confidence"] >= MIN_CONFIDENCE
        ]
        return sorted(unused, key=lambda f: (f.path, f.finding.line_start, f.finding.rule_id))


def _decode(data: bytes) -> str:
    """The source the way vulture reads a file: in the encoding its coding cookie names."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def _scan_file(file: Path) -> FileReport:
    data = file.read_bytes()
    try:
        source = _decode(data)
        tree = parse_python(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return FileReport(error=describe_error(exc))
    scanner = vulture_core.Vulture()
    scanner.scan(source, filename=_NEUTRAL_NAME)
    if scanner.exit_code == vulture_core.ExitCode.InvalidInput:
        return FileReport(error="vulture could not parse the file")
    lines = source.splitlines()
    symbols = enclosing_symbols(tree)

    def describe(item: Any) -> dict[str, Any]:
        return {
            "type": item.typ,
            "name": item.name,
            "first": item.first_lineno,
            "last": item.last_lineno,
            "confidence": item.confidence,
            "message": item.message,
            "snippet": snippet(lines, item.first_lineno, item.first_lineno),
            "symbol": symbols.get(item.first_lineno),
        }

    definitions = [
        describe(item)
        for collection in _COLLECTIONS.values()
        for item in getattr(scanner, collection)
    ]
    unreachable = [_finding(describe(item)) for item in scanner.unreachable_code]
    return FileReport(
        findings=unreachable,
        facts={"definitions": definitions, "used": sorted(scanner.used_names)},
    )


# vulture's path rules per kind of definition; kinds without one never depend on the path.
_PATH_RULES: dict[str, Callable[[Path, str], bool]] = {
    "import": vulture_core._ignore_import,
    "class": vulture_core._ignore_class,
    "function": vulture_core._ignore_function,
    "method": vulture_core._ignore_method,
}


def _ignored_for_path(path: str, item: Mapping[str, Any]) -> bool:
    rule = _PATH_RULES.get(item["type"])
    # Anchored at "/" so the decision depends on the repository path only, not on where
    # the tree happens to be on disk.
    return rule is not None and bool(rule(Path("/", PurePosixPath(path)), item["name"]))


@functools.cache
def _whitelist_uses(module: str) -> frozenset[str]:
    """Names vulture's bundled whitelist for ``module`` uses (framework hooks such as
    ``TestCase.setUp``); empty for modules it has no whitelist for."""
    try:
        data = pkgutil.get_data("vulture", f"whitelists/{module}_whitelist.py")
    except OSError:
        return frozenset()
    if data is None:
        return frozenset()
    scanner = vulture_core.Vulture()
    scanner.scan(data.decode("utf-8"), filename=f"whitelists/{module}_whitelist.py")
    return frozenset(scanner.used_names)


def _finding(item: Mapping[str, Any]) -> RawFinding:
    kind = item["type"]
    return RawFinding(
        rule_id=vulture_core.ERROR_CODES[kind],
        severity=severity.dead_code_severity(item["confidence"]),
        line_start=item["first"],
        line_end=item["last"],
        message=f"{item['message']} ({item['confidence']}% confidence)",
        snippet=item["snippet"],
        symbol=item["symbol"],
    )
