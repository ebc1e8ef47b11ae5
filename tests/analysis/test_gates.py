"""Quality gates: each limit, and the reasons a verdict gives."""

from __future__ import annotations

import pydantic
import pytest

from forgeyard.analysis.gates import QualityGates, evaluate


def test_default_gate_fails_on_new_critical_findings() -> None:
    result = evaluate(
        QualityGates(), score=95.0, new_by_severity={"critical": 3}, open_by_severity={}
    )
    assert not result.passed
    assert result.reasons == ["3 new critical findings (allowed 0)"]


def test_default_gate_passes_without_them() -> None:
    result = evaluate(
        QualityGates(),
        score=20.0,
        new_by_severity={"high": 9, "low": 40},
        open_by_severity={"critical": 5},
    )
    assert result.passed
    assert result.reasons == []


def test_every_limit_broken_is_a_reason() -> None:
    gates = QualityGates(
        max_new_critical=0,
        max_new_high=1,
        max_new_medium=None,
        max_open_critical=0,
        max_open_high=10,
        min_score=80,
    )
    result = evaluate(
        gates,
        score=72.5,
        new_by_severity={"critical": 1, "high": 2, "medium": 99},
        open_by_severity={"critical": 1, "high": 10},
    )
    assert not result.passed
    assert result.reasons == [
        "1 new critical finding (allowed 0)",
        "2 new high findings (allowed 1)",
        "1 open critical finding (allowed 0)",
        "health score 72.5 is below 80",
    ]


def test_a_score_gate_without_a_score_fails() -> None:
    result = evaluate(
        QualityGates(min_score=60), score=None, new_by_severity={}, open_by_severity={}
    )
    assert result.reasons == ["no health score (required at least 60)"]


def test_limits_at_the_boundary_pass() -> None:
    gates = QualityGates(max_new_high=2, min_score=70)
    result = evaluate(gates, score=70.0, new_by_severity={"high": 2}, open_by_severity={})
    assert result.passed


def test_settings_are_validated() -> None:
    with pytest.raises(pydantic.ValidationError):
        QualityGates(max_new_high=-1)
    with pytest.raises(pydantic.ValidationError):
        QualityGates.model_validate({"max_new_hihg": 1})
