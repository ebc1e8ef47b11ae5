"""What every package ecosystem shares: the dependency and manifest shapes, the errors, and the
one interface an ecosystem implements.

An ecosystem reads manifests (``requirements.txt``, ``pyproject.toml``, ``package.json``…) and
their lock files, answers version questions with its own rules (PEP 440 is not semver), and
rewrites one requirement in a manifest's text so that a chosen version is allowed, leaving every
other byte alone: the rewritten file becomes a pull request's diff, and a diff that reformats a
user's file is one they will not merge.

Repository content is untrusted: manifests are read and parsed here, never executed, and no file
outside the repository's root is ever read (a symlink or an include that leaves it is an error).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

# Directories that hold installed or vendored code, never the project's own manifests.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        "node_modules",
        "bower_components",
        "site-packages",
        "vendor",
        "vendored",
        "_vendor",
        "third_party",
    }
)


class ManifestError(Exception):
    """A manifest or lock file that cannot be read; names the file and, when known, the line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class UnsupportedRequirement(Exception):  # noqa: N818 - the name the deps domain uses
    """A requirement this ecosystem reports but will not rewrite (a URL, a path, a dist-tag…)."""

    def __init__(self, name: str, specifier: str, reason: str) -> None:
        self.name = name
        self.specifier = specifier
        self.reason = reason
        super().__init__(f"cannot rewrite {name} {specifier!r}: {reason}")


@dataclass(frozen=True)
class Manifest:
    ecosystem: str
    path: str  # relative to the repository's root, posix separators
    lock_path: str | None  # the lock file that resolves it, same convention


@dataclass(frozen=True)
class Dependency:
    ecosystem: str  # an ECOSYSTEMS key: "pypi", "npm"
    name: str  # canonical: PEP 503 normalised for Python, as written for npm
    specifier: str  # the requirement as written: ">=2.0,<3", "^1.2.3"; "" when unconstrained
    manifest: str  # relative posix path of the manifest that declares it
    group: str  # "main", "dev", "optional:<extra>", "peer", "poetry-group:<name>"…
    resolved: str | None  # the version the lock (or an exact pin) resolves it to
    line: int | None  # 1-based line of the declaration, where the format has lines
    markers: str | None = None  # PEP 508 environment markers (Python), None otherwise
    # The URL, VCS or path reference (or npm dist-tag) used instead of a version range: such a
    # dependency is reported so users see it, but never rewritten.
    reference: str | None = None


class Ecosystem(ABC):
    """One package ecosystem. Versions and specifiers are strings in the ecosystem's own syntax;
    the version methods raise :class:`ValueError` for one they cannot read."""

    name: ClassVar[str]

    @abstractmethod
    def find_manifests(self, root: Path) -> list[Manifest]:
        """Every manifest under ``root``, sorted by path, outside :data:`SKIPPED_DIRS`."""

    @abstractmethod
    def parse(self, root: Path, manifest: Manifest) -> list[Dependency]:
        """The dependencies ``manifest`` declares, in file order, with versions from its lock.

        Raises :class:`ManifestError` for a file that cannot be read."""

    @abstractmethod
    def rewrite(self, text: str, manifest_path: str, dependency: Dependency, target: str) -> str:
        """``text`` (the manifest's content) with ``dependency``'s requirement changed so that
        ``target`` is allowed; every other byte is kept. Returns ``text`` unchanged when the
        requirement already allows ``target``.

        Raises :class:`UnsupportedRequirement` for a requirement that is not a version range,
        and :class:`ManifestError` when the requirement is not found in ``text``."""

    def update_lock(
        self, root: Path, manifest: Manifest, dependency: Dependency, target: str
    ) -> bool:
        """Bring ``manifest``'s lock file in line with a rewritten manifest; False when nothing
        was done. Regenerating a lock needs the package manager and a registry, so this first
        version never touches the lock: callers must treat the lock as stale."""
        return False

    @abstractmethod
    def satisfies(self, specifier: str, version: str) -> bool:
        """Whether ``version`` is allowed by ``specifier``, with the ecosystem's own rules."""

    @abstractmethod
    def compare(self, a: str, b: str) -> int:
        """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b``."""

    @abstractmethod
    def is_prerelease(self, version: str) -> bool:
        """Whether ``version`` is a prerelease (alpha, beta, rc, dev…)."""


def walk(root: Path, wanted: Callable[[PurePosixPath], bool]) -> list[str]:
    """Relative posix paths of the files under ``root`` that ``wanted`` accepts, sorted.

    Symlinked directories are not followed (they can point anywhere, or at themselves)."""
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if name not in SKIPPED_DIRS)
        base = PurePosixPath(Path(directory).relative_to(root).as_posix())
        for filename in filenames:
            relative = base / filename
            if wanted(relative) and (root / relative).is_file():
                found.append(relative.as_posix())
    return sorted(found)


def inside(root: Path, relative: str, *, origin: str) -> Path:
    """``root / relative`` resolved, refusing a path (or a symlink) that leaves ``root``."""
    resolved_root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(resolved_root):
        raise ManifestError(origin, None, f"{relative} is outside the repository")
    return candidate


def read_manifest(root: Path, relative: str) -> str:
    """The text of ``relative`` under ``root``; a file that is missing, outside the root or
    not UTF-8 is a :class:`ManifestError` naming it."""
    file = inside(root, relative, origin=relative)
    try:
        return file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ManifestError(relative, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(relative, None, f"not UTF-8 text ({exc.reason})") from None


def line_at(text: str, offset: int) -> int:
    """The 1-based line that holds character ``offset`` of ``text``."""
    return text.count("\n", 0, offset) + 1


def truncate(release: tuple[int, ...], precision: int) -> tuple[int, ...]:
    """``release`` cut or zero-padded to ``precision`` components: ``(2, 3, 1)``, 2 → ``(2, 3)``."""
    padded = release + (0,) * max(precision - len(release), 0)
    return padded[:precision]


def raise_upper_bound(bound: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    """A new exclusive upper bound above ``target`` with the granularity of ``bound``.

    A bound's granularity is its last non-zero component (``<2.0`` means "below the next
    major", ``<1.5`` "below the next minor"); the new bound is ``target`` rounded down to that
    component plus one step, written with as many components as ``bound``:
    ``<2.0`` and 2.1 → ``<3.0``; ``<1.5`` and 1.7.2 → ``<1.8``.
    """
    nonzero = [index for index, part in enumerate(bound) if part]
    step = nonzero[-1] if nonzero else len(bound) - 1
    raised = list(truncate(target, step + 1))
    raised[step] += 1
    return tuple(raised) + (0,) * (len(bound) - step - 1)


def dotted(release: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in release)
