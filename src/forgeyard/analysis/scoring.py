"""The health score: one number from 0 to 100 and a grade, with the parts that made it.

    density    = (10·critical + 5·high + 2·medium + 0.5·low + 0·info) per 1,000 lines of code
    findings   = min(60, 10 · log2(1 + density))
    complexity = min(20, 4 · max(0, mean function complexity - 5))
    upkeep     = min(20, 0.5 · max(0, 65 - mean maintainability index))
    score      = clamp(100 - findings - complexity - upkeep, 0, 100), one decimal
    grade      = A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, else F

Only open findings count. The logarithm makes the first findings per thousand lines cost the
most, so fixing a few problems in a clean code base shows, and a code base with hundreds
cannot sink below what the other parts say. A mean complexity of 5 is radon's boundary of
simple functions (rank A); an index of 65 is where maintainability is commonly called
moderate. The maintainability mean is weighted by each file's lines of code, so a tiny
module does not count as much as a large one. docs/analysis.md explains the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from forgeyard.analysis.detectors.base import SEVERITIES, FileReport, Severity

WEIGHTS: dict[Severity, float] = {
    "critical": 10.0,
    "high": 5.0,
    "medium": 2.0,
    "low": 0.5,
    "info": 0.0,
}
FINDINGS_SCALE = 10.0
FINDINGS_CAP = 60.0
COMPLEXITY_FREE_UP_TO = 5.0
COMPLEXITY_SCALE = 4.0
COMPLEXITY_CAP = 20.0
MAINTAINABILITY_FREE_FROM = 65.0
MAINTAINABILITY_SCALE = 0.5
MAINTAINABILITY_CAP = 20.0
GRADES = (("A", 90.0), ("B", 80.0), ("C", 70.0), ("D", 60.0))


@dataclass(frozen=True)
class ScoreInputs:
    by_severity: Mapping[str, int] = field(default_factory=dict)  # open findings
    lines_of_code: int = 0
    functions: int = 0
    complexity_total: float = 0.0  # the sum of every function's cyclomatic complexity
    mean_maintainability: float | None = None  # None when no file has an index

    @property
    def mean_complexity(self) -> float:
        return self.complexity_total / self.functions if self.functions else 0.0


@dataclass(frozen=True)
class Score:
    value: float
    grade: str
    density: float  # weighted findings per 1,000 lines
    findings_penalty: float
    complexity_penalty: float
    maintainability_penalty: float

    def components(self) -> dict[str, float]:
        return {
            "density": self.density,
            "findings_penalty": self.findings_penalty,
            "complexity_penalty": self.complexity_penalty,
            "maintainability_penalty": self.maintainability_penalty,
        }


def weighted_density(by_severity: Mapping[str, int], lines_of_code: int) -> float:
    weighted = sum(WEIGHTS[s] * by_severity.get(s, 0) for s in SEVERITIES)
    return weighted * 1000 / max(lines_of_code, 1)


def grade(value: float) -> str:
    return next((letter for letter, floor in GRADES if value >= floor), "F")


def compute_score(inputs: ScoreInputs) -> Score:
    density = weighted_density(inputs.by_severity, inputs.lines_of_code)
    findings = min(FINDINGS_CAP, FINDINGS_SCALE * math.log2(1 + density))
    excess = max(0.0, inputs.mean_complexity - COMPLEXITY_FREE_UP_TO)
    complexity = min(COMPLEXITY_CAP, COMPLEXITY_SCALE * excess)
    mi = inputs.mean_maintainability
    shortfall = 0.0 if mi is None else max(0.0, MAINTAINABILITY_FREE_FROM - mi)
    upkeep = min(MAINTAINABILITY_CAP, MAINTAINABILITY_SCALE * shortfall)
    value = round(min(100.0, max(0.0, 100.0 - findings - complexity - upkeep)), 1)
    return Score(
        value=value,
        grade=grade(value),
        density=round(density, 3),
        findings_penalty=round(findings, 3),
        complexity_penalty=round(complexity, 3),
        maintainability_penalty=round(upkeep, 3),
    )


def inputs_from_reports(
    by_severity: Mapping[str, int], reports: Mapping[str, Mapping[str, FileReport]]
) -> ScoreInputs:
    """Score inputs from every file's reports (detector name → path → report): lines from
    ``large_files`` (every file, any language), functions and the index from ``complexity``."""
    lines = sum(r.metrics.get("loc", 0.0) for r in reports.get("large_files", {}).values())
    complexity = reports.get("complexity", {}).values()
    weighted_mi = [
        (r.metrics["mi"], r.metrics.get("loc", 0.0)) for r in complexity if "mi" in r.metrics
    ]
    mi_weight = sum(weight for _, weight in weighted_mi)
    return ScoreInputs(
        by_severity=dict(by_severity),
        lines_of_code=int(lines),
        functions=int(sum(r.metrics.get("functions", 0.0) for r in complexity)),
        complexity_total=sum(r.metrics.get("complexity_total", 0.0) for r in complexity),
        mean_maintainability=(
            sum(mi * weight for mi, weight in weighted_mi) / mi_weight if mi_weight else None
        ),
    )
