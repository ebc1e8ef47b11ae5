"""The confidence formula: each factor's rule, factors without evidence weighing nothing,
and failing tests outweighing everything."""

from __future__ import annotations

from dataclasses import replace

from forgeyard.deps.confidence import Evidence, assess

SAFE = Evidence(
    tests="passed",
    test_summary="12 passed",
    semver_change="patch",
    age_days=30.0,
    deprecated=None,
    current_yanked=False,
    new_findings=0,
    peers_succeeded=3,
    peers_failed=0,
)


def _factor(result: dict, name: str) -> dict:
    return next(f for f in result["factors"] if f["name"] == name)


def test_a_tested_old_patch_with_peer_successes_scores_high_on_strong_evidence() -> None:
    result = assess(SAFE)
    assert result["score"] > 0.95
    assert result["evidence"]["level"] == "strong"
    assert _factor(result, "tests")["detail"].endswith("12 passed")
    assert _factor(result, "organization_history")["score"] == 0.8  # (3+1)/(3+2)


def test_riskier_evidence_lowers_the_score_factor_by_factor() -> None:
    base = assess(SAFE)["score"]
    for change in (
        {"semver_change": "major"},
        {"age_days": 0.0},
        {"deprecated": "use 3.x"},
        {"new_findings": 2},
        {"peers_succeeded": 0, "peers_failed": 2},
    ):
        assert assess(replace(SAFE, **change))["score"] < base, change


def test_missing_evidence_weighs_nothing_and_is_said() -> None:
    unknown = replace(SAFE, tests="not_run", test_summary=None, age_days=None, peers_succeeded=0)
    result = assess(unknown)
    assert _factor(result, "tests")["score"] is None
    assert _factor(result, "release_age")["score"] is None
    assert result["evidence"]["factors_with_evidence"] == 3
    assert result["evidence"]["level"] == "limited"
    # A patch with no findings and a live release: what evidence there is, is good.
    assert result["score"] > 0.9


def test_failing_tests_make_the_score_zero() -> None:
    assert assess(replace(SAFE, tests="failed"))["score"] == 0.0
