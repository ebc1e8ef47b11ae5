"""Code analysis: forgeyard's detectors against the same tools run by hand, on Django's source.

The tree is Django's sdist (``DJANGO_VERSION``, any 5.1.x if that one cannot be had),
downloaded once into a cache under the temporary directory and unpacked per run.

- baseline: the tools one after another as their own commands on the whole tree, the way a
  developer or a CI script runs them (``ruff check``, ``bandit -r``, ``radon cc``, ``radon mi``,
  ``vulture``, ``detect-secrets scan``); each is timed, and the baseline is their sum.
- forgeyard: the tree committed as a repository, registered and analysed by the job worker
  (``bench/analysis_pipeline.py``): every stage a user's analysis has, database writes and
  the per-blob report cache included;
- re-analysis: one Python file touched and committed, then analysed again; its baseline is
  the full analysis (the goal is at most a tenth of its time).

One round each (a round takes minutes). The rate is files analysed a second; the ratio is
forgeyard's rate over the baseline's, above 1 when forgeyard is faster.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from ruff import find_ruff_bin  # type: ignore[import-untyped]

from bench.analysis_pipeline import Timings, run_pipeline
from bench.harness import Session
from bench.model import BenchError, Row
from forgeyard.analysis.detectors import lint
from forgeyard.analysis.detectors.base import FileRef

NAME = "analysis"
DJANGO_VERSION = "5.1.4"
DJANGO_FALLBACK = "Django>=5.1,<5.2"
CACHE_DIR = Path(tempfile.gettempdir()) / "forgeyard-bench-cache"


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


def format_figures(baseline: dict[str, float], timings: Timings) -> str:
    total = sum(baseline.values())
    lines = [f"{'tool':<18}{'seconds':>10}", "-" * 28]
    lines += [f"{tool:<18}{seconds:>10.2f}" for tool, seconds in baseline.items()]
    lines += [
        "-" * 28,
        f"{'sum of tools':<18}{total:>10.2f}",
        f"{'forgeyard':<18}{timings.full_s:>10.2f}  "
        f"({timings.full.files_total:,} files, {timings.full.lines:,} lines, "
        f"score {timings.full.health_score})",
        f"{'re-analysis':<18}{timings.again_s:>10.2f}  "
        f"({timings.again.files_analysed} file re-run)",
        f"{'full / tools':<18}{timings.full_s / total:>10.2f}",
        f"{'re-analysis / full':<18}{timings.again_s / timings.full_s:>10.3f}",
    ]
    return "\n".join(lines)


def _row(
    target: str,
    files: int,
    seconds: float,
    ratio: float | None,
    baseline: str = "the tools one after another",
) -> Row:
    return Row(
        benchmark=NAME,
        target=target,
        requests_per_s=round(files / seconds, 3),
        p50_ms=round(seconds * 1000, 1),
        p99_ms=round(seconds * 1000, 1),
        ratio_to_baseline=ratio,
        rounds=[],
        unit="files/s",
        baseline=baseline,
    )


def run(session: Session) -> list[Row]:
    archive = django_sdist()
    with tempfile.TemporaryDirectory(dir=session.workdir, prefix="django-") as scratch:
        root = unpack(archive, Path(scratch) / "tree")
        files = tree_files(root)
        _progress(f"{NAME}: {root.name}, {len(files):,} files")
        baseline = time_baseline(root)
        _progress(f"{NAME}: forgeyard, full analysis then one file touched")
        timings = run_pipeline(Path(scratch), root)
    print(format_figures(baseline, timings))
    total = sum(baseline.values())
    analysed = timings.full.files_total or len(files)
    return [
        _row("baseline", analysed, total, None),
        _row("forgeyard", analysed, timings.full_s, round(total / timings.full_s, 4)),
        _row(
            "re-analysis",
            analysed,
            timings.again_s,
            round(timings.full_s / timings.again_s, 4),
            baseline="forgeyard's full analysis",
        ),
    ]
