"""The install and test stages against the real local registries (tests/deps/conftest.py).

The index serves ``fy-gamma`` (1.0.0 adds, 2.0.0 subtracts) and pytest itself, rebuilt as
wheels from this venv's own installation, so a tree's ``requirements-dev.txt`` can ask for
pytest and the test stage finds it in the tree's venv, never the server's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from forgeyard.deps import build_reports as reports
from forgeyard.deps.build import RegistryAccess, install, run_tests
from forgeyard.kernel.processes import Completed
from tests.registries import harness

TEST_MATH = """\
from fy_gamma import add


def test_add():
    assert add(2, 3) == 5


def test_version():
    import fy_gamma
    assert fy_gamma.__version__
"""


def python_tree(root: Path, gamma: str, *, pytest_too: bool = True) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_math.py").write_text(TEST_MATH)
    (root / "requirements.txt").write_text(f"fy-gamma=={gamma}\n")
    if pytest_too:
        (root / "requirements-dev.txt").write_text("pytest\n")
    return root


def pypi(url: str) -> RegistryAccess:
    return RegistryAccess(pypi_index_url=url, npm_registry_url=None, npm_token=None)


async def test_python_install_and_tests_pass(pypi_index: str, tmp_path: Path) -> None:
    root, work = python_tree(tmp_path / "tree", "1.0.0"), tmp_path / "work"
    installed = await install(
        root, {"pypi"}, registries=pypi(pypi_index), work_dir=work, time_limit=120
    )
    assert installed.passed, installed.failure
    assert installed.stage == "install"
    assert [run.argv[1:3] for run in installed.commands] == [
        ("venv", "--quiet"),
        ("pip", "install"),
    ]
    tested = await run_tests(root, {"pypi"}, command=None, work_dir=work, time_limit=120)
    assert tested.passed, tested.failure
    assert tested.summary == "2 passed"
    assert tested.commands[0].argv[0] == str(work / "venv" / "bin" / "python")
    assert not (root / ".pytest_cache").exists()


async def test_tests_failing_on_the_new_version_name_the_test(
    pypi_index: str, tmp_path: Path
) -> None:
    root, work = python_tree(tmp_path / "tree", "2.0.0"), tmp_path / "work"
    installed = await install(
        root, {"pypi"}, registries=pypi(pypi_index), work_dir=work, time_limit=120
    )
    assert installed.passed, installed.failure
    tested = await run_tests(root, {"pypi"}, command=None, work_dir=work, time_limit=120)
    assert not tested.passed
    assert not tested.skipped
    assert tested.summary == "1 failed, 1 passed"
    assert tested.failure is not None
    assert tested.failure.stage == "test"
    assert tested.failure.failing_tests == ["tests/test_math.py::test_add"]
    assert tested.failure.suspected_cause == "test tests/test_math.py::test_add failed"
    assert "assert -1 == 5" in tested.failure.output_tail


@pytest.mark.parametrize("use_uv", [None, False], ids=["uv", "pip"])
async def test_a_version_the_index_lacks_fails_the_install(
    pypi_index: str, tmp_path: Path, use_uv: bool | None
) -> None:
    root, work = python_tree(tmp_path / "tree", "9.9", pytest_too=False), tmp_path / "work"
    with_password = pypi_index.replace("http://", "http://fy:s3cret-pass@")
    installed = await install(
        root,
        {"pypi"},
        registries=pypi(with_password),
        work_dir=work,
        time_limit=120,
        use_uv=use_uv,
    )
    assert not installed.passed
    assert installed.failure is not None
    assert installed.failure.stage == "install"
    assert installed.failure.suspected_cause == (
        "the install could not find fy-gamma==9.9 on the index"
    )
    shown = installed.failure.command + installed.failure.output_tail
    shown += repr([run.argv for run in installed.commands])
    assert "s3cret-pass" not in shown


async def test_pytest_missing_from_the_venv_is_no_test_command(
    pypi_index: str, tmp_path: Path
) -> None:
    root, work = python_tree(tmp_path / "tree", "1.0.0", pytest_too=False), tmp_path / "work"
    installed = await install(
        root, {"pypi"}, registries=pypi(pypi_index), work_dir=work, time_limit=120
    )
    assert installed.passed, installed.failure
    tested = await run_tests(root, {"pypi"}, command=None, work_dir=work, time_limit=60)
    assert tested.skipped
    assert not tested.passed
    assert tested.reason is not None
    assert tested.reason.startswith("no test command found")
    assert "pytest is not installed" in tested.reason
    assert tested.commands == []


async def test_a_configured_command_runs_in_the_venv(pypi_index: str, tmp_path: Path) -> None:
    root, work = python_tree(tmp_path / "tree", "2.0.0", pytest_too=False), tmp_path / "work"
    await install(root, {"pypi"}, registries=pypi(pypi_index), work_dir=work, time_limit=120)
    tested = await run_tests(
        root,
        {"pypi"},
        command="python -c 'import fy_gamma, sys; sys.exit(fy_gamma.add(2, 3) != 5)'",
        work_dir=work,
        time_limit=60,
    )
    assert not tested.passed
    assert tested.failure is not None
    assert tested.failure.command.startswith("sh -c ")
    assert tested.failure.suspected_cause == "the tests exited with code 1"


async def test_a_test_command_past_the_time_limit_is_killed(tmp_path: Path) -> None:
    tested = await run_tests(
        tmp_path, set(), command="sleep 30", work_dir=tmp_path / "work", time_limit=1
    )
    assert not tested.passed
    assert tested.commands[0].timed_out
    assert tested.commands[0].returncode is None
    assert tested.failure is not None
    assert tested.failure.suspected_cause == "timed out after 1 s"


async def test_the_servers_environment_is_not_visible_to_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEYARD_PROBE_SECRET", "do-not-leak")
    tested = await run_tests(
        tmp_path, set(), command="env; exit 1", work_dir=tmp_path / "work", time_limit=20
    )
    assert tested.failure is not None
    assert "HOME=" in tested.failure.output_tail
    assert "FORGEYARD_PROBE_SECRET" not in tested.failure.output_tail
    assert "do-not-leak" not in tested.failure.output_tail


async def test_no_tests_found_is_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(
        json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})
    )
    tested = await run_tests(
        tmp_path, {"pypi", "npm"}, command=None, work_dir=tmp_path / "work", time_limit=20
    )
    assert tested.skipped
    assert not tested.passed
    assert tested.reason is not None
    assert "no Python tests" in tested.reason
    assert "package.json has no test script" in tested.reason


async def test_nothing_to_install_is_skipped(tmp_path: Path) -> None:
    installed = await install(
        tmp_path,
        {"pypi", "npm"},
        registries=RegistryAccess(None, None, None),
        work_dir=tmp_path / "work",
        time_limit=20,
    )
    assert installed.skipped
    assert installed.reason is not None
    assert "no requirements" in installed.reason


# --- npm ----------------------------------------------------------------------------------------


def npm_tree(root: Path, left: str) -> Path:
    root.mkdir(parents=True)
    manifest = {
        "name": "tree",
        "version": "1.0.0",
        "private": True,
        "dependencies": {"fy-left": left, "fy-noisy": "1.0.0"},
        "scripts": {"test": "node --test"},
    }
    (root / "package.json").write_text(json.dumps(manifest))
    (root / "left.test.js").write_text(
        "const test = require('node:test');\n"
        "const assert = require('node:assert');\n"
        "test('left is 2.0.0', () => { assert.strictEqual(require('fy-left'), '2.0.0'); });\n"
    )
    return root


def npm_access(verdaccio: harness.Verdaccio) -> RegistryAccess:
    return RegistryAccess(None, npm_registry_url=verdaccio.url, npm_token=verdaccio.token)


@pytest.mark.parametrize("locked", [True, False], ids=["npm-ci", "npm-install"])
async def test_npm_installs_without_running_scripts(
    npm_registry: harness.Verdaccio, tmp_path: Path, locked: bool
) -> None:
    root, work = npm_tree(tmp_path / "tree", "2.0.0"), tmp_path / "work"
    if locked:
        harness.npm(npm_registry, "install", "--package-lock-only", cwd=root)
    installed = await install(
        root, {"npm"}, registries=npm_access(npm_registry), work_dir=work, time_limit=120
    )
    assert installed.passed, installed.failure
    assert installed.commands[0].argv[:2] == (("npm", "ci") if locked else ("npm", "install"))
    assert "--ignore-scripts" in installed.commands[0].argv
    assert (root / "node_modules" / "fy-noisy" / "package.json").exists()
    assert not (root / "postinstall-ran").exists()
    assert not (work / "npmrc").exists()  # the token's file is gone
    assert npm_registry.token not in repr(installed.commands)
    tested = await run_tests(root, {"npm"}, command=None, work_dir=work, time_limit=60)
    assert tested.passed, tested.failure
    assert tested.summary == "1 passed, 0 failed"
    if not locked:  # the check is real: with scripts allowed, fy-noisy writes the file
        assert _postinstall_writes_with_scripts_allowed(root)


def _postinstall_writes_with_scripts_allowed(root: Path) -> bool:
    subprocess.run(["npm", "rebuild", "fy-noisy"], cwd=root, check=True, capture_output=True)
    return (root / "postinstall-ran").exists()


async def test_npm_tests_failing_are_named(npm_registry: harness.Verdaccio, tmp_path: Path) -> None:
    root, work = npm_tree(tmp_path / "tree", "1.2.0"), tmp_path / "work"
    installed = await install(
        root, {"npm"}, registries=npm_access(npm_registry), work_dir=work, time_limit=120
    )
    assert installed.passed, installed.failure
    tested = await run_tests(root, {"npm"}, command=None, work_dir=work, time_limit=60)
    assert not tested.passed
    assert tested.failure is not None
    assert tested.failure.failing_tests == ["left is 2.0.0"]
    assert tested.failure.suspected_cause == "test left is 2.0.0 failed"


async def test_npm_install_of_a_missing_version_fails(
    npm_registry: harness.Verdaccio, tmp_path: Path
) -> None:
    root, work = npm_tree(tmp_path / "tree", "9.9.9"), tmp_path / "work"
    installed = await install(
        root, {"npm"}, registries=npm_access(npm_registry), work_dir=work, time_limit=120
    )
    assert not installed.passed
    assert installed.failure is not None
    assert installed.failure.suspected_cause == (
        "the install could not find fy-left@9.9.9 on the registry"
    )
    assert npm_registry.token not in installed.failure.output_tail


# --- reading output -------------------------------------------------------------------------------


def completed(output: str, returncode: int | None = 1, timed_out: bool = False) -> Completed:
    return Completed(("x",), returncode, timed_out, output, False, 0.1)


def test_pytest_and_jest_summaries_are_read() -> None:
    pytest_output = (
        "FAILED tests/a.py::test_b - assert 1 == 2\n==== 1 failed, 12 passed in 0.3s ===\n"
    )
    assert reports.summarize_tests(pytest_output) == "1 failed, 12 passed"
    assert reports.find_failing_tests(pytest_output) == ["tests/a.py::test_b"]
    jest = "  \u25cf math \u203a adds\n\nTests:       1 failed, 2 passed, 3 total\n"
    assert reports.summarize_tests(jest) == "1 failed, 2 passed"
    assert reports.find_failing_tests(jest) == ["math \u203a adds"]


def test_install_causes_are_recognised() -> None:
    uv_wheels = "error: Building source distributions is disabled, but attempted to build `x==1`"
    cause = reports.install_cause(completed(uv_wheels), 60)
    assert cause.startswith("a package needs a source build but only wheels are allowed")
    assert reports.install_cause(completed("", None, True), 60) == "timed out after 60 s"
    assert reports.install_cause(completed("??", 2), 60) == "the install exited with code 2"
    many = reports.tests_cause(["a", "b", "c", "d"], completed(""), 60)
    assert many == "4 tests failed: a, b, c and 1 more"
