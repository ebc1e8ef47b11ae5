"""Code analysis: forgeyard's detectors against the same tools run by hand, on Django's source.

The tree is Django's sdist (``DJANGO_VERSION``, any 5.1.x if that one cannot be had),
downloaded once into a cache under the temporary directory and unpacked per run.

- baseline: the tools one after another as their own commands on the whole tree, the way a
  developer or a CI script runs them (``ruff check``, ``bandit -r``, ``radon cc``, ``radon mi``,
  ``vulture``, ``detect-secrets scan``); each is timed, and the baseline is their sum.
- forgeyard: :func:`full_analysis` over every file of the tree; for now the engine alone
  (:func:`~forgeyard.analysis.engine.run_detectors` with its two worker processes, then every
  detector's ``combine``). It is one function so that the analysis service (database writes,
  the per-blob report cache) can be measured in its place.

One round each (a round takes tens of seconds). The rate is files analysed a second; the
ratio is forgeyard's rate over the baseline's, above 1 when forgeyard is faster.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ruff import find_ruff_bin  # type: ignore[import-untyped]

from bench.harness import Session
from bench.model import BenchError, Row
from forgeyard.analysis.detectors import all_detectors, lint
from forgeyard.analysis.detectors.base import FileRef
from forgeyard.analysis.engine import run_detectors

NAME = "analysis"
DJANGO_VERSION = "5.1.4"
DJANGO_FALLBACK = "Django>=5.1,<5.2"
CACHE_DIR = Path(tempfile.gettempdir()) / "forgeyard-bench-cache"
TIME_LIMIT_S = 1800.0
PROCESSES = 2

FullAnalysis = Callable[[Path, list[FileRef]], None]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def django_sdist() -> Path:
    """Django's source archive, downloaded on the first run."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for requirement in (f"Django=={DJANGO_VERSION}", DJANGO_FALLBACK):
        found = sorted(CACHE_DIR.glob("[Dd]jango-5.1*.tar.gz"))
        if found:
            return found[-1]
        _progress(f"{NAME}: downloading {requirement} (source)")
        command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        subprocess.run(
            [*command, requirement, "-d", str(CACHE_DIR), "-q"], check=False, capture_output=True
        )
    found = sorted(CACHE_DIR.glob("[Dd]jango-5.1*.tar.gz"))
    if not found:
        raise BenchError(f"could not download Django {DJANGO_VERSION} (nor any 5.1.x) with pip")
    return found[-1]


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return next(path for path in into.iterdir() if path.is_dir())


def tree_files(root: Path) -> list[FileRef]:
    """Every file, as the analysis service would list a commit (the blob id is a stand-in)."""
    return [
        FileRef(path.relative_to(root).as_posix(), f"blob-{index}", path.stat().st_size)
        for index, path in enumerate(sorted(root.rglob("*")))
        if path.is_file() and not path.is_symlink()
    ]


def baseline_commands() -> dict[str, list[str]]:
    """The tools as commands run in the tree's root, each as close as can be to the work its
    detector does (same rule selection for ruff, every file for detect-secrets)."""
    bin_dir = Path(sys.executable).parent
    ruff = [find_ruff_bin(), "check", "--isolated", "--no-cache", "--exit-zero"]
    return {
        "ruff": [*ruff, "--output-format", "json", "--select", lint.SELECT, "."],
        "bandit": [str(bin_dir / "bandit"), "-r", "-f", "json", "-q", "."],
        "radon cc": [str(bin_dir / "radon"), "cc", "-j", "."],
        "radon mi": [str(bin_dir / "radon"), "mi", "-j", "."],
        "vulture": [str(bin_dir / "vulture"), "."],
        "detect-secrets": [str(bin_dir / "detect-secrets"), "scan", "--all-files", "."],
    }


def time_baseline(root: Path) -> dict[str, float]:
    seconds = {}
    for tool, command in baseline_commands().items():
        started = time.perf_counter()
        done = subprocess.run(command, cwd=root, capture_output=True, check=False)
        seconds[tool] = time.perf_counter() - started
        if not done.stdout and done.returncode not in (0, 1, 3):
            said = done.stderr.decode(errors="replace")[-500:]
            raise BenchError(f"{tool} failed with {done.returncode}: {said}")
        _progress(f"{NAME}: baseline {tool}: {seconds[tool]:.2f} s")
    return seconds


def engine_only(root: Path, files: list[FileRef]) -> None:
    """Every detector on every file, then every detector's project-wide findings."""
    detectors = all_detectors()

    def stage(name: str) -> None:
        _progress(f"{NAME}: forgeyard {name}")

    async def analyse() -> None:
        async def on_detector(name: str) -> None:
            stage(name)

        reports = await run_detectors(
            root=root,
            files=files,
            detectors=detectors,
            processes=PROCESSES,
            time_limit=TIME_LIMIT_S,
            on_detector=on_detector,
        )
        for detector in detectors:
            detector.combine(reports[detector.name])

    asyncio.run(analyse())


# What the forgeyard row measures; the analysis service replaces it when it exists.
full_analysis: FullAnalysis = engine_only


def format_figures(baseline: dict[str, float], forgeyard: float) -> str:
    total = sum(baseline.values())
    lines = [f"{'tool':<16}{'seconds':>10}", "-" * 26]
    lines += [f"{tool:<16}{seconds:>10.2f}" for tool, seconds in baseline.items()]
    lines += [
        "-" * 26,
        f"{'sum of tools':<16}{total:>10.2f}",
        f"{'forgeyard':<16}{forgeyard:>10.2f}",
    ]
    lines.append(f"{'ratio':<16}{forgeyard / total:>10.2f}  (forgeyard time / tools' time)")
    return "\n".join(lines)


def _row(target: str, files: int, seconds: float, ratio: float | None) -> Row:
    return Row(
        benchmark=NAME,
        target=target,
        requests_per_s=round(files / seconds, 3),
        p50_ms=round(seconds * 1000, 1),
        p99_ms=round(seconds * 1000, 1),
        ratio_to_baseline=ratio,
        rounds=[],
        unit="files/s",
        baseline="the tools one after another",
    )


def run(session: Session) -> list[Row]:
    archive = django_sdist()
    with tempfile.TemporaryDirectory(dir=session.workdir, prefix="django-") as scratch:
        root = unpack(archive, Path(scratch))
        files = tree_files(root)
        _progress(f"{NAME}: {root.name}, {len(files):,} files")
        baseline = time_baseline(root)
        started = time.perf_counter()
        full_analysis(root, files)
        forgeyard = time.perf_counter() - started
    print(format_figures(baseline, forgeyard))
    ratio = round(sum(baseline.values()) / forgeyard, 4)  # rates: files over each time
    return [
        _row("baseline", len(files), sum(baseline.values()), None),
        _row("forgeyard", len(files), forgeyard, ratio),
    ]
