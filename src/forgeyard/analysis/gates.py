"""Quality gates: the limits an analysis must keep to pass, and the verdict with its reasons.

"New" findings are those a commit introduced (compared with its base by fingerprint); "open"
are all findings present at the commit. A limit of None is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from forgeyard.analysis.detectors.base import SEVERITIES


class QualityGates(BaseModel):
    """A repository's gate settings; the defaults fail a commit that adds a critical finding."""

    model_config = ConfigDict(extra="forbid")

    max_new_critical: int | None = Field(0, ge=0, description="new critical findings allowed")
    max_new_high: int | None = Field(None, ge=0, description="new high findings allowed")
    max_new_medium: int | None = Field(None, ge=0, description="new medium findings allowed")
    max_open_critical: int | None = Field(None, ge=0, description="open critical findings allowed")
    max_open_high: int | None = Field(None, ge=0, description="open high findings allowed")
    min_score: float | None = Field(None, ge=0, le=100, description="lowest health score passing")


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # one line per limit broken


def _plural(count: int, severity: str, kind: str) -> str:
    return f"{count} {kind} {severity} finding{'' if count == 1 else 's'}"


def evaluate(
    gates: QualityGates,
    *,
    score: float | None,
    new_by_severity: Mapping[str, int],
    open_by_severity: Mapping[str, int],
) -> GateResult:
    reasons = []
    for kind, counts in (("new", new_by_severity), ("open", open_by_severity)):
        for severity in SEVERITIES:
            limit = getattr(gates, f"max_{kind}_{severity}", None)
            count = counts.get(severity, 0)
            if limit is not None and count > limit:
                reasons.append(f"{_plural(count, severity, kind)} (allowed {limit})")
    if gates.min_score is not None:
        if score is None:
            reasons.append(f"no health score (required at least {gates.min_score:g})")
        elif score < gates.min_score:
            reasons.append(f"health score {score:g} is below {gates.min_score:g}")
    return GateResult(passed=not reasons, reasons=reasons)
