"""The engine: workers in a scrubbed environment, killed past their time limit, and a batch
that survives files no tool can parse."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from forgeyard.analysis.detectors import DETECTORS, all_detectors
from forgeyard.analysis.detectors.base import Detector, FileRef, FileReport
from forgeyard.analysis.detectors.large_files import LargeFilesDetector
from forgeyard.analysis.detectors.lint import LintDetector
from forgeyard.analysis.engine import (
    DetectorError,
    balanced_chunks,
    run_detectors,
    worker_environment,
)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every subprocess the engine starts: its argv, its keyword arguments, its pid."""
    calls: list[dict[str, Any]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await real(*argv, **kwargs)
        calls.append({"argv": argv, "kwargs": kwargs, "pid": process.pid})
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return calls


def write(root: Path, files: dict[str, bytes]) -> list[FileRef]:
    refs = []
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        refs.append(FileRef(path, f"blob-{path}", len(data)))
    return refs


def test_worker_environment_holds_no_server_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEYARD_SECRET_KEY", "do not leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nor this")
    env = worker_environment()
    assert set(env) <= {"PATH", "TMPDIR", "LANG", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE"}
    assert env["LANG"] == "C.UTF-8"
    assert env["PYTHONHASHSEED"] == "0"


async def test_workers_start_with_exactly_that_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawned: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("FORGEYARD_SECRET_KEY", "do not leak")
    files = write(tmp_path, {f"m{i}.py": b"import os\n" for i in range(4)})
    reports = await run_detectors(
        root=tmp_path, files=files, detectors=[LintDetector()], processes=2, time_limit=60
    )
    assert len(spawned) == 2
    for call in spawned:
        assert call["kwargs"]["env"] == worker_environment()
        assert not any(name.startswith("FORGEYARD_") for name in call["kwargs"]["env"])
        assert call["kwargs"]["start_new_session"] is True
    assert sorted(reports["lint"]) == [f"m{i}.py" for i in range(4)]
    assert all(r.findings[0].rule_id == "F401" for r in reports["lint"].values())


async def test_a_worker_past_its_time_limit_is_killed(
    tmp_path: Path, spawned: list[dict[str, Any]]
) -> None:
    # No worker even finishes importing the tools in 50 ms.
    files = write(tmp_path, {"a.py": b"x = 1\n"})
    with pytest.raises(DetectorError) as caught:
        await run_detectors(root=tmp_path, files=files, detectors=[LintDetector()], time_limit=0.05)
    assert caught.value.detector == "lint"
    assert "time limit" in caught.value.reason
    (call,) = spawned
    with pytest.raises(ProcessLookupError):
        os.killpg(call["pid"], 0)  # the whole group is gone


class _Unregistered(Detector):
    name = "not-a-detector"
    version = "0"

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        raise AssertionError("runs in the worker only")


async def test_a_failing_detector_raises_a_clear_error(tmp_path: Path) -> None:
    files = write(tmp_path, {"a.py": b"x = 1\n"})
    with pytest.raises(DetectorError, match="not-a-detector: KeyError"):
        await run_detectors(root=tmp_path, files=files, detectors=[_Unregistered()], time_limit=60)


async def test_stages_and_files_that_do_not_parse(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {
            "old/py2.py": b"print 'hello'\n",
            "junk.py": bytes(range(256)) * 8,
            "image.png": b"\x89PNG\r\n\x1a\n\0\0\0" * 50,
            "good.py": b"import os\n\n\ndef f(x=[]):\n    return eval(x)\n",
            "README.md": b"# hello\n",
        },
    )
    stages: list[str] = []

    async def on_detector(name: str) -> None:
        stages.append(name)

    reports = await run_detectors(
        root=tmp_path,
        files=files,
        detectors=all_detectors(),
        time_limit=120,
        on_detector=on_detector,
    )
    assert stages == list(DETECTORS)
    assert {f.rule_id for f in reports["lint"]["good.py"].findings} == {"F401", "B006"}
    assert {f.rule_id for f in reports["security"]["good.py"].findings} == {"B307"}
    assert reports["lint"]["old/py2.py"].error
    assert reports["complexity"]["junk.py"].error
    assert reports["large_files"]["image.png"].metrics["lines"] == 0
    assert set(reports["secrets"]) == {f.path for f in files}


async def test_an_empty_batch_starts_no_worker(
    tmp_path: Path, spawned: list[dict[str, Any]]
) -> None:
    reports = await run_detectors(
        root=tmp_path, files=[], detectors=[LargeFilesDetector()], time_limit=5
    )
    assert reports == {"large_files": {}}
    assert spawned == []


def test_chunks_are_balanced_by_size() -> None:
    files = [FileRef(f"f{i}", "b", size) for i, size in enumerate([100, 60, 50, 40, 10, 5])]
    chunks = balanced_chunks(files, 2)
    assert [sum(f.size for f in chunk) for chunk in chunks] == [140, 125]
    assert sorted(f.path for chunk in chunks for f in chunk) == sorted(f.path for f in files)
    assert balanced_chunks(files[:1], 2) == [[files[0]]]
