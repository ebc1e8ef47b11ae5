"""Complexity: radon's cyclomatic complexity per function and maintainability index per file.

Each file is parsed once; the complexity visitor, the Halstead visitor and the raw counts
share that tree, where running ``radon cc`` and ``radon mi`` would parse every file twice.
"""

from __future__ import annotations

from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from radon.complexity import cc_rank  # type: ignore[import-untyped]
from radon.metrics import h_visit_ast, mi_compute  # type: ignore[import-untyped]
from radon.raw import analyze  # type: ignore[import-untyped]
from radon.visitors import ComplexityVisitor  # type: ignore[import-untyped]

from forgeyard.analysis.detectors import severity
from forgeyard.analysis.detectors.base import (
    Detector,
    FileReport,
    RawFinding,
    describe_error,
    enclosing_symbols,
    parse_python,
    snippet,
)


class ComplexityDetector(Detector):
    name = "complexity"
    version = f"radon {package_version('radon')}/1"

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        return {path: _analyse_file(root / path) for path in paths}


def _analyse_file(file: Path) -> FileReport:
    data = file.read_bytes()
    text = data.decode("utf-8", errors="replace")
    try:
        tree = parse_python(data)
        raw = analyze(text)
        visitor = ComplexityVisitor.from_ast(tree)
        volume = h_visit_ast(tree).total.volume
    except Exception as exc:  # radon's tokenizer and visitors fail in many ways on odd code
        return FileReport(error=describe_error(exc), metrics={"loc": float(_count_loc(text))})
    functions = [block for block in visitor.blocks if block.letter != "C"]
    # radon mi's default counts multi-line strings (docstrings) as comments; so do we.
    comments = (raw.comments + raw.multi) / raw.sloc * 100 if raw.sloc else 0.0
    mi = mi_compute(volume, visitor.total_complexity, raw.lloc, comments) if raw.lloc else 100.0
    lines = text.splitlines()
    symbols = enclosing_symbols(tree)
    findings = [_function_finding(block, lines, symbols) for block in functions]
    report = FileReport(
        findings=[finding for finding in findings if finding is not None],
        metrics={
            "loc": float(raw.sloc),
            "complexity_total": float(sum(block.complexity for block in functions)),
            "complexity_max": float(max((block.complexity for block in functions), default=0)),
            "functions": float(len(functions)),
            "mi": round(float(mi), 2),
        },
    )
    if mi < severity.LOW_MAINTAINABILITY_INDEX and raw.lloc:
        report.findings.append(
            RawFinding(
                rule_id="MI",
                severity=severity.LOW_MAINTAINABILITY,
                line_start=1,
                line_end=1,
                message=f"maintainability index {mi:.1f} is below "
                f"{severity.LOW_MAINTAINABILITY_INDEX:g} (radon rank C)",
                snippet="",  # the whole file is the finding; the path identifies it
                symbol=None,
            )
        )
    return report


def _function_finding(block: Any, lines: list[str], symbols: dict[int, str]) -> RawFinding | None:
    rank = cc_rank(block.complexity)
    if rank not in severity.RADON_RANK:
        return None
    kind = "method" if block.is_method else "function"
    return RawFinding(
        rule_id=f"CC-{rank}",
        severity=severity.RADON_RANK[rank],
        line_start=block.lineno,
        line_end=block.endline,
        message=f"{kind} {block.fullname} has cyclomatic complexity {block.complexity} "
        f"(rank {rank})",
        snippet=snippet(lines, block.lineno, block.lineno),  # the signature, not the body
        symbol=symbols.get(block.lineno, block.fullname),
    )


def _count_loc(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())
