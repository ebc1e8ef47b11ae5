"""Fingerprints stay put when code moves and change when the offending code does."""

from __future__ import annotations

from pathlib import Path

from forgeyard.analysis.detectors.base import RawFinding
from forgeyard.analysis.detectors.lint import LintDetector
from forgeyard.analysis.fingerprints import assign_fingerprints, fingerprint, normalise_code

SOURCE = """def handler(request):
    unused = request.body
    return 1
"""


def lint(tmp_path: Path, source: str) -> list[tuple[RawFinding, str]]:
    (tmp_path / "app.py").write_text(source)
    report = LintDetector().analyse(tmp_path, ["app.py"])["app.py"]
    return assign_fingerprints("app.py", report.findings, detector="lint")


def test_lines_inserted_above_keep_the_fingerprint(tmp_path: Path) -> None:
    ((before, print_before),) = lint(tmp_path, SOURCE)
    moved = "import os\n\nos.getcwd()\n\n\n" + SOURCE
    ((after, print_after),) = lint(tmp_path, moved)
    assert (before.rule_id, after.rule_id) == ("F841", "F841")
    assert after.line_start == before.line_start + 5
    assert print_after == print_before


def test_reindented_code_keeps_the_fingerprint() -> None:
    assert normalise_code("    x  =  1\n\n") == normalise_code("x = 1")
    assert fingerprint("lint", "F841", "a.py", "  x = 1", "f") == fingerprint(
        "lint", "F841", "a.py", "x = 1", "f"
    )


def test_changed_code_changes_the_fingerprint(tmp_path: Path) -> None:
    ((_, original),) = lint(tmp_path, SOURCE)
    ((_, changed),) = lint(tmp_path, SOURCE.replace("request.body", "request.json()"))
    ((_, renamed),) = lint(tmp_path, SOURCE.replace("handler", "view"))  # another symbol
    assert len({original, changed, renamed}) == 3


def test_path_rule_and_detector_count() -> None:
    base = fingerprint("lint", "F841", "a.py", "x = 1", None)
    assert len(base) == 64
    assert base != fingerprint("lint", "F841", "b.py", "x = 1", None)
    assert base != fingerprint("lint", "F842", "a.py", "x = 1", None)
    assert base != fingerprint("security", "F841", "a.py", "x = 1", None)


def test_identical_findings_in_one_function_stay_two() -> None:
    # def f():
    #     eval('1')
    #     eval('1')
    finding = RawFinding("B307", "medium", 2, 2, "eval", "eval('1')", "f")
    second = RawFinding("B307", "medium", 3, 3, "eval", "eval('1')", "f")
    assigned = assign_fingerprints("a.py", [second, finding], detector="security")
    assert [f.line_start for f, _ in assigned] == [2, 3]
    first_print, second_print = (printed for _, printed in assigned)
    assert second_print == f"{first_print}#2"
