"""A build's directories under the work directory, its source, and the files it keeps.

Each build gets ``<work dir>/builds/<build id>/`` with ``src`` (the commit's tree, where the
steps run) and ``home`` (the steps' private ``HOME`` and ``TMPDIR``); the whole directory goes
when the build ends. Everything in it is the build's untrusted code's to write, so nothing is
read back from it without checking where it really leads.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeyard.kernel.logging import get_logger

BUILDS_DIR = "builds"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # a build id used as a directory name
log = get_logger("forgeyard.runner")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def archive(self) -> Path:
        return self.root / "source.tar"


def create_workspace(work_dir: Path, build_id: str) -> Workspace:
    """Empty ``src`` and ``home`` directories for the build (left-overs of a crash removed)."""
    if not _SAFE_ID.fullmatch(build_id):
        raise ValueError(f"{build_id!r} is not a build id this runner can use as a directory")
    workspace = Workspace(work_dir.absolute() / BUILDS_DIR / build_id)  # steps chdir
    remove_tree(workspace.root)
    workspace.src.mkdir(mode=0o700, parents=True)
    workspace.home.mkdir(mode=0o700)
    return workspace


def remove_stale_workspaces(work_dir: Path) -> None:
    """What a runner that crashed left behind; only call it while holding the work dir."""
    remove_tree(work_dir / BUILDS_DIR)


def remove_tree(path: Path) -> None:
    """Remove ``path`` even where a step made directories read-only (Go's module cache does)."""
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=_allow_and_retry)


def _allow_and_retry(function: Callable[..., Any], path: str, _error: Any) -> None:
    parent = os.path.dirname(path)
    os.chmod(parent, stat.S_IRWXU)
    if not os.path.islink(path) and os.path.isdir(path):
        os.chmod(path, stat.S_IRWXU)
    function(path)


def extract_source(archive: Path, into: Path) -> None:
    """Unpack the source tar with the ``data`` filter: no member may land outside ``into``,
    link outside it, or be a device; set-uid bits and group/other write bits are dropped."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def collect_artifacts(src: Path, patterns: Iterable[str]) -> list[tuple[str, Path]]:
    """The regular files the globs match under ``src`` (``**`` across directories; a matched
    directory stands for every file in it), as (relative POSIX path, the file it really is),
    sorted. A match that leads out of ``src`` through a symbolic link is left out."""
    root = src.resolve()
    found: dict[str, Path] = {}
    for pattern in patterns:
        for match in _matches(src, pattern):
            for file in _files(match):
                if (real := _regular_file_inside(file, root)) is not None:
                    found.setdefault(file.relative_to(src).as_posix(), real)
    return sorted(found.items())


def _matches(src: Path, pattern: str) -> list[Path]:
    try:
        return sorted(src.glob(pattern))
    except (ValueError, NotImplementedError) as exc:  # empty or absolute: the server refuses both
        log.warning("artifact_pattern_ignored", pattern=pattern, reason=str(exc))
        return []


def _files(match: Path) -> Iterator[Path]:
    if match.is_dir() and not match.is_symlink():
        for folder, _dirs, names in os.walk(match):  # does not descend into linked directories
            yield from (Path(folder) / name for name in names)
    else:
        yield match


def _regular_file_inside(path: Path, root: Path) -> Path | None:
    """Where ``path`` really leads, if that is a regular file under ``root``."""
    try:
        resolved = path.resolve(strict=True)
        regular = stat.S_ISREG(resolved.stat().st_mode)
    except (OSError, RuntimeError):  # a dangling link, a link loop
        return None
    return resolved if regular and resolved.is_relative_to(root) else None
