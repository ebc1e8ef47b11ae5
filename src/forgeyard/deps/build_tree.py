"""What a checked-out tree holds for the install and test stages: its requirement files, its
pyproject.toml, whether it has Python tests, its npm test script. Reads files only."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

NPM_PLACEHOLDER_TEST = "no test specified"  # what `npm init` writes into scripts.test
_PYTEST_CONFIGS = ("pytest.ini", "conftest.py")


def requirement_files(root: Path) -> list[Path]:
    """requirements.txt first, then the root's other requirement files for development and
    tests (requirements-dev.txt, test-requirements.txt…); docs and the like are left out."""
    found = []
    for path in sorted(root.glob("*requirements*.txt")):
        stem = path.stem.lower()
        if stem == "requirements" or "dev" in stem or "test" in stem:
            found.append(path)
    return sorted(found, key=lambda p: p.name != "requirements.txt")


def pyproject(root: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read(root / "pyproject.toml"))
    except tomllib.TOMLDecodeError:
        return {}


def read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def has_python_tests(root: Path) -> bool:
    if (root / "tests").is_dir() or (root / "test").is_dir():
        return True
    if any((root / name).is_file() for name in _PYTEST_CONFIGS):
        return True
    if "pytest" in pyproject(root).get("tool", {}):
        return True
    if "[tool:pytest]" in read(root / "setup.cfg") or "[pytest]" in read(root / "tox.ini"):
        return True
    return any(root.glob("test_*.py")) or any(root.glob("*_test.py"))


def npm_test_script(root: Path) -> str | None:
    try:
        manifest = json.loads((root / "package.json").read_text())
    except (OSError, ValueError):
        return None
    scripts = manifest.get("scripts") if isinstance(manifest, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or not script.strip() or NPM_PLACEHOLDER_TEST in script:
        return None
    return script
