"""Python (PyPI): requirements files, ``pyproject.toml`` (PEP 621, PEP 735, Poetry) and the
``uv.lock`` / ``poetry.lock`` that resolve them, with PEP 440 semantics from ``packaging``.

Requirements files are read the way pip reads them: ``\\`` continues a line, ``#`` after
whitespace starts a comment, ``-r`` includes another file (relative to the including one) and
``-c`` names a constraints file, whose exact pins resolve the requirements they constrain but
declare nothing. Every requirements file is a manifest of its own, declaring its own lines, so
a dependency is reported once, by the file a rewrite must change. ``pyproject.toml`` lives in
:mod:`._python_pyproject`; the version ranges both share in :mod:`._python_versions`.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from forgeyard.deps.ecosystems import _python_pyproject
from forgeyard.deps.ecosystems._python_versions import (
    exact_pin,
    parse_requirement,
    poetry_constraint,
    requirement_dependency,
    rewrite_requirement,
    specifier_sets,
)
from forgeyard.deps.ecosystems.base import (
    Dependency,
    Ecosystem,
    Manifest,
    ManifestError,
    UnsupportedRequirement,
    inside,
    read_manifest,
    walk,
)

LOCK_FILES = ("uv.lock", "poetry.lock")  # the first one beside a pyproject.toml resolves it
INCLUDE_OPTIONS = frozenset({"-r", "--requirement"})
CONSTRAINT_OPTIONS = frozenset({"-c", "--constraint"})
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's rule: '#' at the start or after whitespace
_OPTIONS = re.compile(r"\s+-")  # per-requirement options (--hash=…) follow the requirement
__all__ = ["PythonEcosystem", "poetry_constraint"]

_UNNAMED = re.compile(r"^(\.|/|~|[A-Za-z][A-Za-z0-9+.-]*://)")  # a bare path or URL line


@dataclass(frozen=True)
class _Line:
    """One logical line of a requirements file: continuations joined, comment removed."""

    number: int  # 1-based line of its first physical line
    start: int  # offset of its first physical line in the file's text
    text: str  # the logical line, stripped
    first: str  # its first physical line, without comment or continuation backslash


class PythonEcosystem(Ecosystem):
    name = "pypi"

    def find_manifests(self, root: Path) -> list[Manifest]:
        """Requirements files (``requirements*.txt``, ``requirements/*.txt`` and whatever they
        include; not the constraints files they name) and every ``pyproject.toml``."""
        named = walk(root, _is_requirements_file)
        included, constraints = _follow_includes(root, named)
        requirements = (set(named) - constraints) | included
        manifests = [Manifest(self.name, path, None) for path in requirements]
        for path in walk(root, lambda file: file.name == "pyproject.toml"):
            manifests.append(Manifest(self.name, path, _lock_beside(root, path)))
        return sorted(manifests, key=lambda manifest: manifest.path)

    def parse(self, root: Path, manifest: Manifest) -> list[Dependency]:
        text = read_manifest(root, manifest.path)
        if PurePosixPath(manifest.path).name == "pyproject.toml":
            locked = _lock_versions(root, manifest.lock_path) if manifest.lock_path else {}
            return _python_pyproject.parse(text, manifest.path, locked)
        return _parse_requirements(root, manifest.path, text)

    def rewrite(self, text: str, manifest_path: str, dependency: Dependency, target: str) -> str:
        if dependency.reference is not None:
            reason = f"it comes from {dependency.reference}, not from a version range"
            raise UnsupportedRequirement(dependency.name, dependency.specifier, reason)
        if PurePosixPath(manifest_path).name == "pyproject.toml":
            return _python_pyproject.rewrite(text, manifest_path, dependency, target)
        return _rewrite_requirements(text, manifest_path, dependency, target)

    def satisfies(self, specifier: str, version: str) -> bool:
        """PEP 440 containment (Poetry constraints converted first) of an explicitly chosen
        version: a prerelease inside the range is allowed, as pip installs a pinned one
        (``>=1.0`` allows 2.0rc1), but ``<2.0`` still excludes 2.0rc1, as PEP 440 says.
        Whether to *choose* a prerelease is the caller's policy (:meth:`is_prerelease`)."""
        parsed = Version(version)
        return any(spec.contains(parsed, prereleases=True) for spec in specifier_sets(specifier))

    def compare(self, a: str, b: str) -> int:
        first, second = Version(a), Version(b)
        return (first > second) - (first < second)

    def is_prerelease(self, version: str) -> bool:
        return Version(version).is_prerelease


def _is_requirements_file(file: PurePosixPath) -> bool:
    if file.suffix != ".txt":
        return False
    return file.name.startswith("requirements") or file.parent.name == "requirements"


def _logical_lines(text: str) -> Iterator[_Line]:
    physical = text.splitlines(keepends=True)
    index, offset = 0, 0
    while index < len(physical):
        number, start, pieces = index + 1, offset, []
        while index < len(physical):
            raw = physical[index].rstrip("\r\n")
            offset += len(physical[index])
            index += 1
            continued = raw.endswith("\\")
            pieces.append(raw[:-1] if continued else raw)
            if not continued:
                break
        logical = _COMMENT.sub("", "".join(pieces)).strip()
        if logical:
            yield _Line(number, start, logical, _COMMENT.sub("", pieces[0]))


def _option(text: str) -> tuple[str, str]:
    """``("-r", "base.txt")`` for ``-r base.txt``, ``-rbase.txt`` or ``--requirement=base.txt``."""
    head, _, rest = text.partition(" ")
    if head.startswith("--") and "=" in head:
        head, _, value = head.partition("=")
        return head, value.strip()
    if not head.startswith("--") and len(head) > 2:
        return head[:2], head[2:].strip()
    return head, rest.strip()


def _requirement_part(text: str) -> str:
    """The requirement of a line, without the per-requirement options that follow it."""
    match = _OPTIONS.search(text)
    return (text[: match.start()] if match else text).rstrip()


def _included_path(including: str, target: str) -> str | None:
    """The root-relative path ``including`` names with ``target``, None if it leaves the root."""
    if "://" in target:
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(including), target))
    return None if path == ".." or path.startswith(("../", "/")) else path


def _follow_includes(root: Path, starts: list[str]) -> tuple[set[str], set[str]]:
    """Files reached through ``-r`` includes, and files named by ``-c`` constraints."""
    included: set[str] = set()
    constraints: set[str] = set()
    pending, seen = list(starts), set(starts)
    while pending:
        path = pending.pop()
        try:
            text = read_manifest(root, path)
        except ManifestError:
            continue  # reported when the file itself is parsed
        for line in _logical_lines(text):
            option, value = _option(line.text) if line.text.startswith("-") else ("", "")
            target = _included_path(path, value) if value else None
            if target is None or not (root / target).is_file():
                continue
            if option in CONSTRAINT_OPTIONS:
                constraints.add(target)
            elif option in INCLUDE_OPTIONS:
                included.add(target)
                if target not in seen:  # cycle protection: each file is read once
                    seen.add(target)
                    pending.append(target)
    return included, constraints


def _parse_requirements(root: Path, path: str, text: str) -> list[Dependency]:
    dependencies: list[Dependency] = []
    pins: dict[str, str] = {}
    for line in _logical_lines(text):
        if line.text.startswith("-"):
            pins.update(_check_option(root, path, line))
            continue
        requirement = _requirement_part(line.text)
        if _UNNAMED.match(requirement):
            continue  # a bare path or URL names no package to update
        dependencies.append(
            requirement_dependency(
                requirement, path=path, group="main", line=line.number, locked={}
            )
        )
    return [replace(dep, resolved=dep.resolved or pins.get(dep.name)) for dep in dependencies]


def _check_option(root: Path, path: str, line: _Line) -> dict[str, str]:
    """Checks an include or constraints option; returns the pins a constraints file holds.
    Other options (``--index-url``, ``-e`` editables…) name no registry dependency."""
    option, value = _option(line.text)
    if option not in INCLUDE_OPTIONS | CONSTRAINT_OPTIONS or "://" in value:
        return {}
    target = _included_path(path, value)
    if target is None:
        raise ManifestError(path, line.number, f"{value} is outside the repository")
    if not inside(root, target, origin=path).is_file():
        raise ManifestError(path, line.number, f"{value} not found")
    return _constraint_pins(root, target) if option in CONSTRAINT_OPTIONS else {}


def _constraint_pins(root: Path, path: str) -> dict[str, str]:
    """Exact ``==`` pins of a constraints file: they resolve the requirements they constrain."""
    pins: dict[str, str] = {}
    for line in _logical_lines(read_manifest(root, path)):
        written = _requirement_part(line.text)
        if line.text.startswith("-") or _UNNAMED.match(written):
            continue
        requirement = parse_requirement(written, path, line.number)
        version = exact_pin(requirement.specifier)
        if version is not None:
            pins[canonicalize_name(requirement.name)] = version
    return pins


def _rewrite_requirements(text: str, path: str, dependency: Dependency, target: str) -> str:
    line = _find_line(text, path, dependency)
    if "--hash" in line.text:
        reason = "it is pinned by hash, and new hashes need the registry (not supported yet)"
        raise UnsupportedRequirement(dependency.name, dependency.specifier, reason)
    written = _requirement_part(line.first)
    if written.strip() != _requirement_part(line.text):
        reason = "the requirement is split across continuation lines"
        raise UnsupportedRequirement(dependency.name, dependency.specifier, reason)
    changed = rewrite_requirement(written, dependency.name, target)
    if changed == written:
        return text
    return text[: line.start] + changed + text[line.start + len(written) :]


def _find_line(text: str, path: str, dependency: Dependency) -> _Line:
    """The line declaring ``dependency`` (same name and markers), preferring its known line."""
    found: list[_Line] = []
    for line in _logical_lines(text):
        written = _requirement_part(line.text)
        if line.text.startswith("-") or _UNNAMED.match(written):
            continue
        requirement = parse_requirement(written, path, line.number)
        markers = str(requirement.marker) if requirement.marker else None
        if canonicalize_name(requirement.name) == dependency.name and (
            markers == dependency.markers
        ):
            found.append(line)
    if not found:
        raise ManifestError(path, dependency.line, f"{dependency.name} is not declared here")
    return next((line for line in found if line.number == dependency.line), found[0])


def _lock_beside(root: Path, manifest: str) -> str | None:
    directory = PurePosixPath(manifest).parent
    for name in LOCK_FILES:
        if (root / directory / name).is_file():
            return (directory / name).as_posix()
    return None


def _lock_versions(root: Path, lock_path: str) -> dict[str, str]:
    """Canonical name → version from a uv or Poetry lock; a name locked at several versions
    (a resolution forked by markers) is left out rather than guessed."""
    try:
        data: dict[str, Any] = tomllib.loads(read_manifest(root, lock_path))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(lock_path, None, f"invalid TOML: {exc}") from None
    versions: dict[str, set[str]] = {}
    for package in data.get("package", []):
        if isinstance(package, dict) and {"name", "version"} <= package.keys():
            name = canonicalize_name(str(package["name"]))
            versions.setdefault(name, set()).add(str(package["version"]))
    return {name: found.pop() for name, found in versions.items() if len(found) == 1}
