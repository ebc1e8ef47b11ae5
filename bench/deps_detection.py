"""Dependency update detection: Forgeyard's ``scan_tree`` against Renovate, same run, same
local registries, same repository.

The fixture (:mod:`bench.deps_fixture`) is 200 pinned dependencies, 100 PyPI packages on a
pypiserver and 100 npm packages on a verdaccio, both on loopback. Each side runs cold (no
cached registry answers) and then warm (the same caches again):

- forgeyard: ``scan_tree`` in this process, a fresh ``MemoryCache`` per registry when cold,
  the same registries when warm (ETag revalidation; pypiserver sends no ETag, so PyPI is
  asked again in full);
- renovate: Renovate 44 on Node 24 in the repository (:mod:`bench.deps_renovate`), a fresh
  base directory when cold, the same one (its package cache) when warm; its time includes
  Node starting it, which is how a user runs it.

Both must find the same updates. Forgeyard proposes one update per dependency, the highest
release; Renovate also proposes the newest release of the current major as a second update
(its ``separateMajorMinor``), so the sets compared are each tool's highest proposal per
package, and Renovate's second updates are counted apart. The goal: the same updates, in at
most half Renovate's time (a ratio of 2 or more).

One untimed pass of each warms the servers and the disk cache first; then ``--rounds``
rounds, the order of the two tools swapped each round; each row is the median.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.registries import harness

from bench import deps_fixture, deps_renovate
from bench.harness import Session
from bench.model import BenchError, DetectionRound, Row
from forgeyard.deps.detection import DepSettings, RepoPolicy
from forgeyard.deps.ecosystems import ECOSYSTEMS
from forgeyard.deps.registries import MemoryCache, NpmRegistry, PyPIRegistry
from forgeyard.deps.scanning import ScanResult, scan_tree
from forgeyard.deps.vulnerabilities import CombinedSource
from forgeyard.kernel.http import OutboundPolicy

NAME = "deps_detection"
GOAL_RATIO = 2.0  # Forgeyard in at most half Renovate's time
# The outbound guard refuses loopback unless allowed, as an operator allows a private registry.
LOOPBACK = OutboundPolicy(allowed_hosts=["127.0.0.1"])
Updates = set[tuple[str, str, str]]  # (ecosystem, name, new version)


@dataclass(frozen=True)
class Registries:
    pypi_url: str  # the server's root; the simple index is under /simple/
    npm_url: str


def _progress(message: str) -> None:
    print(f"{NAME}: {message}", file=sys.stderr, flush=True)


@contextmanager
def registries(packages: list[deps_fixture.Package], workdir: Path) -> Iterator[Registries]:
    """pypiserver and verdaccio with every package published. The harness is pytest's: its
    skips (no pypiserver) and failures become BenchErrors, the caller's errors pass as they are."""
    wheels = workdir / "wheels"
    deps_fixture.write_wheels(packages, wheels)
    (workdir / "verdaccio").mkdir()
    with ExitStack() as running:
        try:
            pypi_url = running.enter_context(harness.start_pypiserver(wheels, workdir))
            verdaccio = running.enter_context(
                harness.start_verdaccio(workdir / "verdaccio", password_hash="sha1")
            )
            started = time.perf_counter()
            deps_fixture.publish_npm(packages, verdaccio)
        except pytest.skip.Exception as exc:
            raise BenchError(f"cannot start the registries: {exc.msg}") from exc
        except RuntimeError as exc:
            raise BenchError(f"the registries failed: {exc}") from exc
        _progress(f"published the npm versions in {time.perf_counter() - started:.1f} s")
        yield Registries(pypi_url, verdaccio.url)


# --- Forgeyard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgeyardRun:
    seconds: float
    updates: Updates
    dependencies: int
    requests: int


def forgeyard_cold_and_warm(repository: Path, urls: Registries) -> list[ForgeyardRun]:
    """The cold scan, then the warm one; one event loop for both, since the registries'
    connection pools belong to the loop that opened them."""
    return asyncio.run(_scan_twice(repository, urls))


async def _scan_twice(repository: Path, urls: Registries) -> list[ForgeyardRun]:
    pypi = PyPIRegistry(f"{urls.pypi_url}/simple/", policy=LOOPBACK, cache=MemoryCache())
    npm = NpmRegistry(urls.npm_url, policy=LOOPBACK, cache=MemoryCache())
    runs: list[ForgeyardRun] = []
    requests_before = 0
    try:
        for _ in ("cold", "warm"):
            started = time.perf_counter()
            result = await scan_tree(
                repository,
                registries={"pypi": pypi, "npm": npm},
                advisories=CombinedSource([]),
                settings_of=lambda d: DepSettings(),
                policy=RepoPolicy(),
                now=datetime.now(UTC),
            )
            seconds = time.perf_counter() - started
            _check_scan(result)
            updates = {
                (u.dependency.ecosystem, u.dependency.name, u.candidate) for u in result.updates
            }
            # requests_made counts from the registries' creation on: the warm scan's are the rest.
            requests = result.requests_made - requests_before
            requests_before = result.requests_made
            runs.append(ForgeyardRun(seconds, updates, len(result.dependencies), requests))
    finally:
        await pypi.aclose()
        await npm.aclose()
    return runs


def _check_scan(result: ScanResult) -> None:
    problems = {**result.manifest_errors, **{str(k): v for k, v in result.registry_errors.items()}}
    if problems:
        shown = "\n".join(f"  {key}: {why}" for key, why in list(problems.items())[:10])
        raise BenchError(f"forgeyard's scan reported {len(problems)} problems:\n{shown}")


# --- the comparison -----------------------------------------------------------------------


def highest_per_package(updates: Updates) -> Updates:
    """Each package's highest proposed version, ordered by its ecosystem's own rules."""
    best: dict[tuple[str, str], str] = {}
    for ecosystem, name, version in updates:
        known = best.get((ecosystem, name))
        if known is None or ECOSYSTEMS[ecosystem].compare(version, known) > 0:
            best[(ecosystem, name)] = version
    return {(ecosystem, name, version) for (ecosystem, name), version in best.items()}


def compare(expected: Updates, forgeyard: Updates, renovate: Updates) -> list[str]:
    """Lines describing agreement; a difference is listed, never raised, so figures remain."""
    renovate_top = highest_per_package(renovate)
    second = len(renovate - renovate_top)
    lines = [
        f"updates: forgeyard {len(forgeyard)}, renovate {len(renovate_top)} highest per package "
        f"(+{second} second updates within the current major, not compared), "
        f"fixture expects {len(expected)}",
        "same updates: " + ("yes" if forgeyard == renovate_top else "NO"),
    ]
    for label, left, right in (
        ("only forgeyard found", forgeyard, renovate_top),
        ("only renovate found", renovate_top, forgeyard),
        ("forgeyard differs from the fixture on", forgeyard ^ expected, set()),
    ):
        differing = sorted(left - right)
        if differing:
            shown = ", ".join(f"{e}:{n}=={v}" for e, n, v in differing[:10])
            lines.append(f"  {label} ({len(differing)}): {shown}")
    return lines


# --- the run ------------------------------------------------------------------------------


def run(session: Session) -> list[Row]:
    deps_renovate.install()
    workdir = session.workdir / NAME
    workdir.mkdir()
    packages = deps_fixture.plan()
    repository = workdir / "repository"
    deps_fixture.write_repository(packages, repository)
    state = workdir / "renovate-state"
    with registries(packages, workdir) as urls:
        config = workdir / "renovate.json"
        deps_renovate.write_config(config, urls.npm_url, urls.pypi_url)

        def renovate_cold_and_warm() -> list[deps_renovate.RenovateRun]:
            shutil.rmtree(state, ignore_errors=True)  # cold: no package cache
            return [
                deps_renovate.run(repository, config, state, workdir / f"renovate-{i}.log")
                for i in (0, 1)
            ]

        _progress("untimed warm-up of both tools")
        forgeyard_cold_and_warm(repository, urls)
        renovate_cold_and_warm()
        forgeyard: list[list[ForgeyardRun]] = []
        renovate: list[list[deps_renovate.RenovateRun]] = []
        rounds = session.options.rounds
        for round_no in range(1, rounds + 1):
            if round_no % 2:
                forgeyard.append(forgeyard_cold_and_warm(repository, urls))
                renovate.append(renovate_cold_and_warm())
            else:
                renovate.append(renovate_cold_and_warm())
                forgeyard.append(forgeyard_cold_and_warm(repository, urls))
            (fy_cold, fy_warm), (rn_cold, rn_warm) = forgeyard[-1], renovate[-1]
            _progress(
                f"round {round_no}/{rounds}: forgeyard {fy_cold.seconds:.2f} s cold, "
                f"{fy_warm.seconds:.2f} s warm; renovate {rn_cold.seconds:.2f} s cold, "
                f"{rn_warm.seconds:.2f} s warm"
            )
    expected = deps_fixture.expected_updates(packages)
    lines = compare(expected, forgeyard[-1][0].updates, renovate[-1][0].updates)
    if renovate[-1][0].lookup_problems:
        lines.append(f"renovate's lookup warnings: {renovate[-1][0].lookup_problems[:5]}")
    return _report(forgeyard, renovate, forgeyard[-1][0].dependencies, lines)


def _report(
    forgeyard: list[list[ForgeyardRun]],
    renovate: list[list[deps_renovate.RenovateRun]],
    dependencies: int,
    comparison: list[str],
) -> list[Row]:
    """The figures and the comparison printed, and one row per tool and cache state."""
    rounds: dict[str, list[DetectionRound]] = {}
    for index, state in enumerate(("cold", "warm")):
        for tool, pairs in (("forgeyard", forgeyard), ("renovate", renovate)):
            rounds[f"{tool} {state}"] = [
                DetectionRound(pair[index].seconds, pair[index].requests, len(pair[index].updates))
                for pair in pairs
            ]
    medians = {
        target: statistics.median(r.seconds for r in runs) for target, runs in rounds.items()
    }
    lines = [f"{'target':<16}{'seconds':>9}{'requests':>10}   (median of {len(forgeyard)} rounds)"]
    for target, runs in rounds.items():
        # The last round's; forgeyard's cold count varies by a few JSON API probes, see pypi.py.
        requests = runs[-1].requests
        lines.append(
            f"{target:<16}{medians[target]:>9.2f}{requests if requests is not None else '?':>10}"
        )
    for state in ("cold", "warm"):
        ratio = medians[f"renovate {state}"] / medians[f"forgeyard {state}"]
        verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
        lines.append(f"{state}: forgeyard {ratio:.2f}x as fast as renovate (goal 2x: {verdict})")
    print("\n".join([*lines, *comparison]))
    rows = []
    for target, runs in rounds.items():
        tool, state = target.split()
        seconds = medians[target]
        faster = round(medians[f"renovate {state}"] / seconds, 4)
        rows.append(
            Row(
                benchmark=NAME,
                target=target,
                requests_per_s=round(dependencies / seconds, 3),
                p50_ms=round(seconds * 1000, 1),
                p99_ms=round(seconds * 1000, 1),
                ratio_to_baseline=faster if tool == "forgeyard" else None,
                rounds=runs,
                unit="deps/s",
                baseline=f"renovate {state}",
            )
        )
    return rows
