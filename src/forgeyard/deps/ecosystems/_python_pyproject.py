"""``pyproject.toml``: PEP 621 dependencies and extras, PEP 735 dependency groups, and Poetry's
dependency tables; read and edited with ``tomlkit`` so comments, key order and quoting survive.

TOML parsers do not report where a value sits, so a declaration's line is found by searching
the text after its table's header; a value that search cannot find (a dotted key, an escaped
string) gets no line rather than a wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import tomlkit
import tomlkit.exceptions
import tomlkit.items
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier
from packaging.utils import canonicalize_name

from forgeyard.deps.ecosystems._python_versions import (
    ECOSYSTEM,
    poetry_pin,
    requirement_dependency,
    rewrite_poetry,
    rewrite_requirement,
)
from forgeyard.deps.ecosystems.base import (
    Dependency,
    ManifestError,
    UnsupportedRequirement,
    line_at,
)

REFERENCE_KEYS = ("git", "path", "url")  # a Poetry dependency not taken from a registry


def parse(text: str, path: str, locked: dict[str, str]) -> list[Dependency]:
    data = _document(text, path).unwrap()
    dependencies: list[Dependency] = []
    for group, anchors, values in _pep508_arrays(data, path):
        position = _find(text, anchors, 0)
        for value in values:
            if isinstance(value, dict):
                continue  # a PEP 735 {include-group = …}: its group is read on its own
            literal = rf"(['\"]){re.escape(value)}\1"
            found = None if position is None else _find(text, [literal], position)
            line = None if found is None else line_at(text, found)
            position = position if found is None else found + 1
            dependencies.append(
                requirement_dependency(value, path=path, group=group, line=line, locked=locked)
            )
    for group, header, table in _poetry_tables(data, path):
        for key, value in table.items():
            if canonicalize_name(key) != "python":  # the interpreter, not a dependency
                found = _find(text, [header, _key_pattern(key)], 0)
                line = None if found is None else line_at(text, found)
                dependencies.extend(_poetry(key, value, path, group, line, locked))
    return dependencies


def rewrite(text: str, path: str, dependency: Dependency, target: str) -> str:
    document = _document(text, path)
    data = document  # tomlkit containers: changing them changes the document
    for group, _anchors, values in _pep508_arrays(data, path):
        if group != dependency.group:
            continue
        for index, value in enumerate(values):
            if isinstance(value, str) and _declares(value, dependency):
                changed = rewrite_requirement(str(value), dependency.name, target)
                if changed == value:
                    return text
                values[index] = _like(value, changed)
                return tomlkit.dumps(document)
    for group, _header, table in _poetry_tables(data, path):
        for key in table if group == dependency.group else ():
            if canonicalize_name(key) == dependency.name:
                return _rewrite_poetry(document, text, table, key, dependency, target)
    message = f"{dependency.name} is not declared in group {dependency.group!r}"
    raise ManifestError(path, dependency.line, message)


def _rewrite_poetry(
    document: tomlkit.TOMLDocument,
    text: str,
    table: Any,
    key: str,
    dependency: Dependency,
    target: str,
) -> str:
    value = table[key]
    holder, field = (table, key) if isinstance(value, str) else (value, "version")
    if not isinstance(value, str | dict) or not isinstance(holder.get(field), str):
        reason = "only a version string or a table with a version is rewritten"
        raise UnsupportedRequirement(dependency.name, dependency.specifier, reason)
    changed = rewrite_poetry(str(holder[field]), dependency.name, target)
    if changed is None:
        return text
    holder[field] = _like(holder[field], changed)
    return tomlkit.dumps(document)


def _document(text: str, path: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ManifestError(path, exc.line, f"invalid TOML: {exc}") from None


def _table(data: Any, key: str, path: str) -> Any:
    """``data[key]`` when it is a table, an empty one when absent; anything else is an error."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ManifestError(path, None, f"{key!r} must be a table")
    return value


def _pep508_arrays(data: Any, path: str) -> Iterator[tuple[str, list[str], Any]]:
    """(group, patterns that lead to the array in the text, the array) for every PEP 508 list."""
    project = _table(data, "project", path)
    arrays = [("main", [r"^\[project\]", r"^\s*dependencies\s*="], project.get("dependencies"))]
    for extra, values in _table(project, "optional-dependencies", path).items():
        header = r"^\[project\.optional-dependencies\]"
        arrays.append((f"optional:{extra}", [header, _key_pattern(extra)], values))
    for name, values in _table(data, "dependency-groups", path).items():
        arrays.append((f"group:{name}", [r"^\[dependency-groups\]", _key_pattern(name)], values))
    for group, anchors, values in arrays:
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str | dict) for v in values):
            raise ManifestError(path, None, f"{group} dependencies must be a list of strings")
        yield group, anchors, values


def _poetry_tables(data: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(group, header pattern, table) for Poetry's main, legacy dev and named groups."""
    poetry = _table(_table(data, "tool", path), "poetry", path)
    yield "main", r"^\[tool\.poetry\.dependencies\]", _table(poetry, "dependencies", path)
    yield "dev", r"^\[tool\.poetry\.dev-dependencies\]", _table(poetry, "dev-dependencies", path)
    for name, body in _table(poetry, "group", path).items():
        header = rf"^\[tool\.poetry\.group\.{re.escape(name)}\.dependencies\]"
        yield f"poetry-group:{name}", header, _table(body, "dependencies", path)


def _poetry(
    key: str, value: Any, path: str, group: str, line: int | None, locked: dict[str, str]
) -> list[Dependency]:
    """One dependency per constraint: a version string, a table, or a list of tables."""
    dependencies: list[Dependency] = []
    for entry in value if isinstance(value, list) else [value]:
        table = {"version": entry} if isinstance(entry, str) else entry
        if not isinstance(table, dict):
            raise ManifestError(path, line, f"{key}: expected a version or a table")
        reference = next((str(table[k]) for k in REFERENCE_KEYS if k in table), None)
        specifier = "" if reference else str(table.get("version", ""))
        try:
            pin = poetry_pin(specifier) if specifier else None
        except InvalidSpecifier:
            raise ManifestError(path, line, f"{key}: invalid constraint {specifier!r}") from None
        name = canonicalize_name(key)
        markers = table.get("markers")
        dependencies.append(
            Dependency(
                ecosystem=ECOSYSTEM,
                name=name,
                specifier=specifier,
                manifest=path,
                group=group,
                resolved=locked.get(name, pin),
                line=line,
                markers=str(markers) if markers else None,
                reference=reference,
            )
        )
    return dependencies


def _declares(written: str, dependency: Dependency) -> bool:
    try:
        requirement = Requirement(written)
    except InvalidRequirement:
        return False
    markers = str(requirement.marker) if requirement.marker else None
    return canonicalize_name(requirement.name) == dependency.name and markers == dependency.markers


def _like(original: Any, value: str) -> tomlkit.items.String:
    """A TOML string holding ``value`` quoted the way ``original`` was."""
    kind = original.type if isinstance(original, tomlkit.items.String) else None
    literal = kind is not None and kind.is_literal()
    multiline = kind is not None and kind.is_multiline()
    return tomlkit.string(value, literal=literal, multiline=multiline)


def _key_pattern(key: str) -> str:
    return rf"^\s*(['\"]?){re.escape(key)}\1\s*="


def _find(text: str, patterns: list[str], position: int) -> int | None:
    """Where the last of ``patterns`` matches, each searched after the previous one's match."""
    start = position
    for pattern in patterns:
        match = re.compile(pattern, re.MULTILINE).search(text, start)
        if match is None:
            return None
        start = match.start()
    return start
