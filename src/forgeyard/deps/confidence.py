"""How safe one update looks, from evidence Forgeyard gathered itself.

The score is a weighted mean of factor scores, each between 0 and 1, over the factors that
had evidence; a factor with none (tests that did not run, a release date the registry does
not serve, no other repository that took the update) is listed with ``score: null`` and
weighs nothing, and ``evidence`` says how much of the formula rested on facts. The weights
and every factor's rule are in ``docs/dependencies.md`` ("Confidence"); the API returns each
factor beside the score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WEIGHTS = {
    "tests": 0.35,
    "semver": 0.20,
    "release_age": 0.15,
    "release_status": 0.10,
    "new_findings": 0.10,
    "organization_history": 0.10,
}
SEMVER_SCORES = {"patch": 1.0, "minor": 0.85, "major": 0.5, "prerelease": 0.3}
MATURE_AFTER_DAYS = 14.0  # a release this old has had time to be reported broken
FRESH_RELEASE_SCORE = 0.4


@dataclass(frozen=True)
class Evidence:
    tests: str  # "passed", "failed" or "not_run"
    test_summary: str | None
    semver_change: str  # major, minor, patch (prerelease when the candidate is one)
    age_days: float | None
    deprecated: str | None
    current_yanked: bool
    new_findings: int | None  # None: the analyze stage did not run
    peers_succeeded: int  # other repositories of the organization that took this update
    peers_failed: int


@dataclass(frozen=True)
class Factor:
    name: str
    weight: float
    score: float | None
    detail: str


def assess(evidence: Evidence) -> dict[str, Any]:
    """``{"score", "factors": [...], "evidence": {...}}``, the shape the API returns."""
    factors = [
        _tests(evidence),
        _semver(evidence),
        _age(evidence),
        _status(evidence),
        _findings(evidence),
        _peers(evidence),
    ]
    known = [f for f in factors if f.score is not None]
    weight = sum(f.weight for f in known)
    score = sum(f.weight * (f.score or 0.0) for f in known) / weight if weight else 0.0
    if evidence.tests == "failed":
        score = 0.0  # nothing outweighs the repository's own tests failing
    covered = round(weight / sum(WEIGHTS.values()), 2)
    return {
        "score": round(score, 3),
        "factors": [asdict(f) for f in factors],
        "evidence": {
            "weight_with_evidence": covered,
            "level": "strong" if covered >= 0.8 else "moderate" if covered >= 0.55 else "limited",
            "factors_with_evidence": len(known),
            "factors": len(factors),
        },
    }


def _tests(evidence: Evidence) -> Factor:
    summary = f": {evidence.test_summary}" if evidence.test_summary else ""
    if evidence.tests == "passed":
        return Factor("tests", WEIGHTS["tests"], 1.0, f"the repository's tests passed{summary}")
    if evidence.tests == "failed":
        return Factor("tests", WEIGHTS["tests"], 0.0, f"the repository's tests failed{summary}")
    return Factor("tests", WEIGHTS["tests"], None, "no tests ran in this repository")


def _semver(evidence: Evidence) -> Factor:
    change = evidence.semver_change
    return Factor("semver", WEIGHTS["semver"], SEMVER_SCORES.get(change, 0.5), f"a {change} update")


def _age(evidence: Evidence) -> Factor:
    age = evidence.age_days
    if age is None:
        return Factor(
            "release_age", WEIGHTS["release_age"], None, "the registry serves no release date"
        )
    ripe = min(1.0, max(0.0, age) / MATURE_AFTER_DAYS)
    score = FRESH_RELEASE_SCORE + (1.0 - FRESH_RELEASE_SCORE) * ripe
    return Factor(
        "release_age", WEIGHTS["release_age"], round(score, 3), f"released {age:.1f} days ago"
    )


def _status(evidence: Evidence) -> Factor:
    if evidence.deprecated:
        detail = f"the new release is deprecated: {evidence.deprecated[:200]}"
        return Factor("release_status", WEIGHTS["release_status"], 0.2, detail)
    if evidence.current_yanked:
        detail = "the current release was yanked; moving off it is welcome"
        return Factor("release_status", WEIGHTS["release_status"], 1.0, detail)
    detail = "the new release is neither yanked nor deprecated"
    return Factor("release_status", WEIGHTS["release_status"], 1.0, detail)


def _findings(evidence: Evidence) -> Factor:
    count = evidence.new_findings
    if count is None:
        return Factor("new_findings", WEIGHTS["new_findings"], None, "the change was not analysed")
    score = max(0.0, 1.0 - 0.25 * count)
    return Factor("new_findings", WEIGHTS["new_findings"], score, f"{count} new findings")


def _peers(evidence: Evidence) -> Factor:
    succeeded, failed = evidence.peers_succeeded, evidence.peers_failed
    if succeeded + failed == 0:
        detail = "no other repository of the organization has taken this update"
        return Factor("organization_history", WEIGHTS["organization_history"], None, detail)
    # Laplace's rule: one success out of one is promising, not certain.
    score = (succeeded + 1) / (succeeded + failed + 2)
    detail = f"{succeeded} of {succeeded + failed} other repositories took it with tests passing"
    return Factor("organization_history", WEIGHTS["organization_history"], round(score, 3), detail)
