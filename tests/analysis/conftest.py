"""A real third-party code base to run the detectors on: requests 2.20.0's source (about
9,000 lines of Python, old enough that every tool finds something in it), downloaded once
per test session."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from forgeyard.analysis.detectors import all_detectors
from forgeyard.analysis.detectors.base import FileRef, FileReport
from forgeyard.analysis.engine import run_detectors

SDIST = "requests==2.20.0"


def tree_files(root: Path) -> list[FileRef]:
    return [
        FileRef(path.relative_to(root).as_posix(), f"blob-{index}", path.stat().st_size)
        for index, path in enumerate(sorted(root.rglob("*")))
        if path.is_file()
    ]


@pytest.fixture(scope="session")
def requests_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    download = tmp_path_factory.mktemp("sdist")
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    done = subprocess.run(
        [*command, SDIST, "-d", str(download), "-q"], capture_output=True, check=False
    )
    archives = list(download.glob("requests-*.tar.gz"))
    if done.returncode != 0 or not archives:
        pytest.skip(f"pip could not download {SDIST}: {done.stderr.decode()[-300:]}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(download, filter="data")
    root = download / "requests-2.20.0"
    shutil.rmtree(root / "requests.egg-info")  # a copy of PKG-INFO, generated
    return root


@pytest.fixture(scope="session")
async def requests_reports(requests_tree: Path) -> dict[str, dict[str, FileReport]]:
    """Every detector's reports on the requests tree, through the engine and its workers."""
    return await run_detectors(
        root=requests_tree,
        files=tree_files(requests_tree),
        detectors=all_detectors(),
        time_limit=300,
    )
