"""The install and test stages of an update job, for one checked-out tree.

:func:`install` puts the tree's dependencies into an environment of its own under
``work_dir`` (a venv for Python, ``node_modules`` for npm, which npm keeps in the tree), from
the configured registries only; :func:`run_tests` runs the repository's tests there. Both run
everything through :func:`forgeyard.kernel.processes.run_limited`: the server's environment
never reaches the tree's code, install scripts of npm packages do not run, the whole stage
has one time limit, and credentials (an npm token, a password in the index URL) go through
a file or an environment variable of the install only, never the command line, and are
masked in what is reported. ``work_dir``'s layout: ``home/`` (HOME, TMPDIR, tool caches),
``venv/`` and, during an npm install only, ``npmrc``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from forgeyard.deps import build_reports as reports
from forgeyard.deps import build_tree as tree
from forgeyard.deps.build_reports import FailureReport
from forgeyard.kernel.processes import SAFE_PATH, Completed, run_limited, scrubbed_env

PYTHON_ECOSYSTEMS = frozenset({"pypi", "python"})
NPM_ECOSYSTEMS = frozenset({"npm"})
_TEST_EXTRAS = ("test", "tests", "testing", "dev")
_PYTEST_NO_TESTS = 5  # pytest's exit code when it collected nothing


@dataclass(frozen=True)
class RegistryAccess:
    """Where installs come from. Credentials for the index go inside its URL."""

    pypi_index_url: str | None
    npm_registry_url: str | None
    npm_token: str | None

    def secrets(self) -> list[str]:
        password = urlsplit(self.pypi_index_url).password if self.pypi_index_url else None
        return [s for s in (password, self.npm_token) if s]


@dataclass(frozen=True)
class CommandRun:
    """One command a stage ran, without its output (that is in the failure report)."""

    argv: tuple[str, ...]
    returncode: int | None
    timed_out: bool
    duration_seconds: float


@dataclass(frozen=True)
class StageResult:
    stage: str  # "install" or "test"
    commands: list[CommandRun] = field(default_factory=list)
    passed: bool = False
    skipped: bool = False
    reason: str | None = None  # why it was skipped, or what was left out
    summary: str | None = None  # "12 passed, 1 failed"
    failure: FailureReport | None = None


def find_uv() -> str | None:
    """uv beside this Python (the Makefile puts it in the venv), else on PATH: about ten
    times faster than ``python -m venv`` + pip for a small tree."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


async def install(
    root: Path,
    ecosystems: set[str],
    *,
    registries: RegistryAccess,
    work_dir: Path,
    time_limit: float,
    use_uv: bool | None = None,
) -> StageResult:
    """Install the tree's Python and npm dependencies; the first failure ends the stage.
    ``use_uv``: None picks uv when it is there, False forces ``python -m venv`` + pip."""
    stage = _Stage("install", root, work_dir, time_limit, registries.secrets())
    left_out: list[str] = []
    if ecosystems & PYTHON_ECOSYSTEMS:
        uv = find_uv() if use_uv is not False else None
        commands = _python_install_commands(root, work_dir / "venv", uv)
        if commands is None:
            left_out.append("Python: no requirements*.txt and no [project] in pyproject.toml")
        else:
            env = _python_install_env(registries.pypi_index_url)
            for argv in commands:
                if not await stage.run(argv, env):
                    return stage.failed(reports.install_cause(stage.last, time_limit))
    if ecosystems & NPM_ECOSYSTEMS:
        if not (root / "package.json").is_file():
            left_out.append("npm: no package.json at the root")
        elif not await _npm_install(stage, root, work_dir, registries):
            return stage.failed(reports.install_cause(stage.last, time_limit))
    if not stage.commands:
        return stage.skipped("nothing to install: " + "; ".join(left_out or ["no ecosystem"]))
    return stage.passed(reason="; ".join(left_out) or None)


async def refresh_lock(
    root: Path,
    ecosystems: set[str],
    *,
    registries: RegistryAccess,
    work_dir: Path,
    time_limit: float,
) -> StageResult:
    """Bring ``package-lock.json`` in line with a rewritten ``package.json`` (npm resolves
    against the registry, writes only the lock, runs no scripts); nothing to do without one.
    Python locks (uv.lock, poetry.lock) are left as they are (docs/dependencies.md)."""
    stage = _Stage("update", root, work_dir, time_limit, registries.secrets())
    if not ecosystems & NPM_ECOSYSTEMS or not (root / "package-lock.json").is_file():
        return stage.skipped("no npm lock file to refresh")
    argv = ["npm", "install", "--package-lock-only"]
    if not await _npm(stage, argv, work_dir, registries):
        return stage.failed(reports.install_cause(stage.last, time_limit))
    return stage.passed()


async def run_tests(
    root: Path,
    ecosystems: set[str],
    *,
    command: str | None,
    work_dir: Path,
    time_limit: float,
) -> StageResult:
    """Run the configured test command (``sh -c``), else the tests found: pytest from the
    tree's own venv, ``npm test``. None found: skipped, with the reason."""
    stage = _Stage("test", root, work_dir, time_limit, [])
    if command:
        commands: list[list[str]] = [["sh", "-c", command]]
        why_none: list[str] = []
    else:
        commands, why_none = _detected_test_commands(root, ecosystems, work_dir / "venv")
    if not commands:
        return stage.skipped("no test command found: " + "; ".join(why_none or ["no tests"]))
    summaries, found_none = [], 0
    for argv in commands:
        ok = await stage.run(argv, {"PYTHONDONTWRITEBYTECODE": "1", "CI": "true"})
        summary = reports.summarize_tests(stage.last.output)
        if summary == "no tests ran" and stage.last.returncode in (0, _PYTEST_NO_TESTS):
            found_none += 1
            continue
        if summary:
            summaries.append(summary)
        if not ok:
            tests = reports.find_failing_tests(stage.last.output)
            return stage.failed(
                reports.tests_cause(tests, stage.last, time_limit),
                failing_tests=tests,
                summary="; ".join(summaries) or None,
            )
    if found_none == len(commands):
        return stage.skipped("the test runner collected no tests", summary="no tests ran")
    return stage.passed(summary="; ".join(summaries) or None)


# --- what to run ------------------------------------------------------------------------------


def _python_install_commands(root: Path, venv: Path, uv: str | None) -> list[list[str]] | None:
    requirements = tree.requirement_files(root)
    project = tree.pyproject(root).get("project")
    if not requirements and not isinstance(project, dict):
        return None
    python = str(venv / "bin" / "python")
    if uv:
        create = [uv, "venv", "--quiet", "--no-python-downloads", "--python", sys.executable]
        installer = [uv, "pip", "install", "--python", python]
    else:
        create = [sys.executable, "-m", "venv"]
        installer = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    installer += ["--only-binary", ":all:"]
    if requirements:
        targets = [arg for path in requirements for arg in ("-r", path.name)]
    else:
        assert isinstance(project, dict)
        extras = project.get("optional-dependencies") or {}
        chosen = [extra for extra in _TEST_EXTRAS if extra in extras]
        targets = [f".[{','.join(chosen)}]" if chosen else "."]
        if uv and isinstance(project.get("name"), str):  # pip builds a local tree anyway
            installer += ["--no-binary", project["name"]]  # the project itself may be built
    return [[*create, str(venv)], [*installer, *targets]]


def _python_install_env(index_url: str | None) -> dict[str, str]:
    """pip and uv read no configuration of the tree's or the user's, and ask nothing; the
    index (its password too) comes by environment variable, not on the command line."""
    env = {"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "PIP_CONFIG_FILE": os.devnull}
    if index_url:
        env |= {"PIP_INDEX_URL": index_url, "UV_DEFAULT_INDEX": index_url}
    return env


async def _npm_install(
    stage: _Stage, root: Path, work_dir: Path, registries: RegistryAccess
) -> bool:
    locked = (root / "package-lock.json").is_file() or (root / "npm-shrinkwrap.json").is_file()
    argv = ["npm", "ci"] if locked else ["npm", "install", "--no-package-lock"]
    return await _npm(stage, argv, work_dir, registries)


async def _npm(stage: _Stage, argv: list[str], work_dir: Path, registries: RegistryAccess) -> bool:
    argv = [*argv, "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"]
    npmrc = work_dir / "npmrc"  # the token lives here for this one command only
    lines = []
    if registries.npm_registry_url:
        url = registries.npm_registry_url.rstrip("/") + "/"
        argv += ["--registry", url]
        lines.append(f"registry={url}")
        if registries.npm_token:
            parts = urlsplit(url)
            lines.append(f"//{parts.netloc}{parts.path}:_authToken={registries.npm_token}")
    with os.fdopen(os.open(npmrc, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "w") as file:
        file.write("".join(f"{line}\n" for line in lines))
    try:
        return await stage.run([*argv, "--userconfig", str(npmrc)], {})
    finally:
        npmrc.unlink(missing_ok=True)


def _detected_test_commands(
    root: Path, ecosystems: set[str], venv: Path
) -> tuple[list[list[str]], list[str]]:
    commands, why_none = [], []
    if ecosystems & PYTHON_ECOSYSTEMS:
        if not tree.has_python_tests(root):
            why_none.append("no Python tests (no tests/, test_*.py or pytest configuration)")
        elif not (venv / "bin" / "pytest").exists():
            why_none.append("the tree has Python tests but pytest is not installed in its venv")
        else:
            python = str(venv / "bin" / "python")
            commands.append([python, "-m", "pytest", "-p", "no:cacheprovider"])
    if ecosystems & NPM_ECOSYSTEMS or (root / "package.json").is_file():
        script = tree.npm_test_script(root)
        if script is None:
            why_none.append("package.json has no test script")
        else:
            commands.append(["npm", "test", "--no-update-notifier"])
    return commands, why_none


# --- running ----------------------------------------------------------------------------------


class _Stage:
    """The commands of one stage, run one after another inside one time limit."""

    def __init__(
        self, name: str, root: Path, work_dir: Path, time_limit: float, secrets: Sequence[str]
    ) -> None:
        self.name, self.root, self.time_limit = name, root, time_limit
        self.deadline = time.monotonic() + time_limit
        self.secrets = list(secrets)
        self.venv = work_dir / "venv"
        self.home = work_dir / "home"
        work_dir.mkdir(parents=True, exist_ok=True)
        self.commands: list[CommandRun] = []
        self._last: Completed | None = None

    @property
    def last(self) -> Completed:
        assert self._last is not None
        return self._last

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        """The scrubbed environment, with the venv first on PATH and then the directories of
        the tools a stage calls by name (node and npm may live outside the safe default)."""
        path = [str(self.venv / "bin")]
        for tool in ("npm", "node"):
            found = shutil.which(tool)
            if found and str(Path(found).parent) not in path + SAFE_PATH.split(":"):
                path.append(str(Path(found).parent))
        base = {"PATH": ":".join([*path, SAFE_PATH]), "VIRTUAL_ENV": str(self.venv)}
        return scrubbed_env(base | extra, home=self.home)

    async def run(self, argv: list[str], extra_env: dict[str, str]) -> bool:
        remaining = max(self.deadline - time.monotonic(), 0.0)
        completed = await run_limited(
            argv, cwd=self.root, env=self.environment(extra_env), time_limit=remaining
        )
        self._last = completed
        shown = tuple(reports.redact(arg, self.secrets) for arg in argv)
        self.commands.append(
            CommandRun(shown, completed.returncode, completed.timed_out, completed.duration_seconds)
        )
        return completed.ok

    def failed(
        self,
        cause: str,
        *,
        failing_tests: list[str] | None = None,
        summary: str | None = None,
    ) -> StageResult:
        last = self.last
        failure = FailureReport(
            stage=self.name,
            command=reports.redact(shlex.join(last.argv), self.secrets),
            output_tail=reports.redact(reports.output_tail(last.output), self.secrets),
            suspected_cause=cause,
            failing_tests=failing_tests or [],
        )
        return StageResult(self.name, self.commands, summary=summary, failure=failure)

    def passed(self, *, reason: str | None = None, summary: str | None = None) -> StageResult:
        return StageResult(self.name, self.commands, True, reason=reason, summary=summary)

    def skipped(self, reason: str, *, summary: str | None = None) -> StageResult:
        return StageResult(
            self.name, self.commands, passed=False, skipped=True, reason=reason, summary=summary
        )
