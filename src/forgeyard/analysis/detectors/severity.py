"""The one table that turns each tool's own rating into a Forgeyard severity.

docs/analysis.md shows the same table; a change here is a change of every detector's mapping
revision (its ``version``), so cached reports are recomputed.
"""

from __future__ import annotations

from forgeyard.analysis.detectors.base import Severity

# ruff rule code prefix → severity; the longest matching prefix wins.
RUFF: dict[str, Severity] = {
    "F821": "high",  # undefined name: fails when the line runs
    "F822": "high",  # undefined name in __all__
    "F823": "high",  # local variable referenced before assignment
    "E9": "medium",  # the file cannot be read or compiled
    "F": "medium",  # pyflakes: likely bugs
    "F401": "low",  # unused import
    "F841": "low",  # unused local variable
    "B": "medium",  # bugbear: likely bugs and design problems
    "E": "low",
    "W": "low",
    "UP": "info",  # syntax a newer Python allows
    "SIM": "info",  # simpler spellings
}
RUFF_DEFAULT: Severity = "low"

# bandit issue severity → ours; HIGH severity with HIGH confidence is critical, and LOW
# confidence lowers any rating one step.
BANDIT: dict[str, Severity] = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}
_ONE_STEP_DOWN: dict[Severity, Severity] = {
    "critical": "high",
    "high": "medium",
    "medium": "low",
    "low": "info",
    "info": "info",
}

# radon cyclomatic complexity rank of a function → severity (ranks A and B are no finding).
RADON_RANK: dict[str, Severity] = {"F": "high", "E": "medium", "D": "medium", "C": "low"}
# A file whose maintainability index is below this (radon's rank C) gets one finding.
LOW_MAINTAINABILITY_INDEX = 10.0
LOW_MAINTAINABILITY: Severity = "medium"

SECRET: Severity = "high"  # noqa: S105 - a severity, not a password
# vulture confidence (percent) → severity: 100 means certainly unused (unreachable code, an
# unused argument), 90 an unused import, 60 a name no file mentions (it may be reached by
# reflection or from outside the project).
DEAD_CODE_CERTAIN: Severity = "low"
DEAD_CODE_LIKELY: Severity = "info"
DEAD_CODE_CERTAIN_FROM = 90
LARGE_FILE: Severity = "info"
DUPLICATE: Severity = "low"


def ruff_severity(code: str) -> Severity:
    best = ""
    for prefix in RUFF:
        if code.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return RUFF[best] if best else RUFF_DEFAULT


def bandit_severity(issue_severity: str, issue_confidence: str) -> Severity:
    rated = BANDIT.get(issue_severity.upper(), "low")
    if issue_severity.upper() == "HIGH" and issue_confidence.upper() == "HIGH":
        return "critical"
    if issue_confidence.upper() == "LOW":
        return _ONE_STEP_DOWN[rated]
    return rated


def dead_code_severity(confidence: int) -> Severity:
    return DEAD_CODE_CERTAIN if confidence >= DEAD_CODE_CERTAIN_FROM else DEAD_CODE_LIKELY
