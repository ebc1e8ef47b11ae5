"""The score formula against figures worked out by hand."""

from __future__ import annotations

import math

import pytest

from forgeyard.analysis.detectors.base import FileReport
from forgeyard.analysis.scoring import ScoreInputs, compute_score, grade, inputs_from_reports


def test_a_worked_example() -> None:
    inputs = ScoreInputs(
        by_severity={"critical": 1, "high": 2, "medium": 5, "low": 4, "info": 10},
        lines_of_code=10_000,
        functions=100,
        complexity_total=700,
        mean_maintainability=55.0,
    )
    score = compute_score(inputs)
    # weighted 10 + 10 + 10 + 2 + 0 = 32 over 10,000 lines: 3.2 per 1,000
    assert score.density == 3.2
    assert score.findings_penalty == pytest.approx(10 * math.log2(4.2), abs=1e-3)  # 20.704
    assert score.complexity_penalty == 8.0  # mean 7: 4 x (7 - 5)
    assert score.maintainability_penalty == 5.0  # 0.5 x (65 - 55)
    assert score.value == 66.3  # 100 - 20.704 - 8 - 5 = 66.296
    assert score.grade == "D"
    assert set(score.components()) == {
        "density",
        "findings_penalty",
        "complexity_penalty",
        "maintainability_penalty",
    }


def test_clean_code_scores_100() -> None:
    score = compute_score(
        ScoreInputs({"info": 50}, 1_000, functions=10, complexity_total=30, mean_maintainability=80)
    )
    assert (score.value, score.grade, score.density) == (100.0, "A", 0.0)


def test_one_medium_per_thousand_lines() -> None:
    score = compute_score(ScoreInputs({"medium": 1}, 2_000))  # density 1: 10 x log2(2) = 10
    assert (score.value, score.grade) == (90.0, "A")


def test_penalties_are_capped_and_the_score_clamped() -> None:
    score = compute_score(
        ScoreInputs(
            {"critical": 1_000}, 10, functions=1, complexity_total=90, mean_maintainability=0
        )
    )
    assert (score.findings_penalty, score.complexity_penalty) == (60.0, 20.0)
    assert score.maintainability_penalty == 20.0
    assert (score.value, score.grade) == (0.0, "F")


def test_no_code_and_no_index_cost_nothing() -> None:
    score = compute_score(ScoreInputs())
    assert (score.value, score.maintainability_penalty) == (100.0, 0.0)


@pytest.mark.parametrize(
    ("value", "letter"),
    [(100, "A"), (90, "A"), (89.9, "B"), (80, "B"), (70, "C"), (60, "D"), (59.9, "F"), (0, "F")],
)
def test_grades(value: float, letter: str) -> None:
    assert grade(value) == letter


def test_inputs_from_reports_weigh_the_index_by_lines() -> None:
    reports = {
        "large_files": {
            "a.py": FileReport(metrics={"lines": 120, "loc": 100}),
            "b.md": FileReport(metrics={"lines": 60, "loc": 50}),
        },
        "complexity": {
            "a.py": FileReport(
                metrics={"loc": 90, "functions": 4, "complexity_total": 12, "mi": 40}
            ),
            "c.py": FileReport(
                metrics={"loc": 10, "functions": 1, "complexity_total": 8, "mi": 90}
            ),
            "bad.py": FileReport(error="syntax error", metrics={"loc": 5}),
        },
    }
    inputs = inputs_from_reports({"high": 1}, reports)
    assert inputs.lines_of_code == 150
    assert (inputs.functions, inputs.complexity_total, inputs.mean_complexity) == (5, 20, 4.0)
    assert inputs.mean_maintainability == pytest.approx((40 * 90 + 90 * 10) / 100)  # 45
